/*
 * TokenReview request building and strict reply validation (review.h, docs/design.md §6,
 * docs/security.md §2 items 2, 3, 13 and cases A01-A13, L03).
 *
 * Reply policy, in the order applied:
 *   1. size: 1..KT_REPLY_MAX bytes (else REPLY_TOO_LARGE), no NUL byte anywhere;
 *   2. a lexical pass of our own (lex_scan): JSON tokens only - strings without raw
 *      control characters, RFC 8259 numbers, true/false/null - so NaN, Infinity, "1.",
 *      single quotes, comments and True are refused whatever json-c 0.16 thinks of them
 *      (its STRICT flag lets NaN/Infinity and "1." through); nesting <= KT_REPLY_MAX_DEPTH;
 *   3. json-c STRICT|VALIDATE_UTF8, whole body consumed (only JSON whitespace may follow);
 *   4. duplicate keys, anywhere in the document, are refused: json-c keeps the last
 *      value and silently drops the others, so we count the members the lexer saw (one
 *      ':' outside strings per member) and compare with the members json-c kept. Go's
 *      encoder never emits duplicates, so a reply with one is forged or broken. (Keys
 *      that differ only after an embedded \u0000 collapse in json-c and count as
 *      duplicates too: refused.)
 *   5. every field we look at is type-checked before it is read; every string is
 *      checked for an embedded NUL (strlen == json_object_get_string_len). Fields of
 *      status and status.user are all type-checked when present, as Go's decoder would.
 * Everything outside status (metadata, spec) is ignored except kind and apiVersion.
 *
 * The reply echoes spec.token: the body is never copied here, and the parsed token
 * string is zeroed before the tree is released. json-c's tokener keeps its own scratch
 * copy of parsed strings, released by json_tokener_free without zeroing: unavoidable
 * with json-c's public API (to be listed in the man page's SECURITY NOTES).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "json_strict.h"
#include "review.h"
#include "secure.h"

#define KT_SA_PREFIX        "system:serviceaccount:"
#define KT_SA_GROUP_PREFIX  "system:serviceaccounts:"
#define KT_UID_MAX          128
#define KT_GROUP_MAX        256
#define KT_EXTRA_MAX        256
#define KT_NS_MAX           63
#define KT_NAME_MAX         253
#define KT_EXTRA_PREFIX     "authentication.kubernetes.io/"

/* ------------------------------------------------------------------ request */

enum kt_reason kt_review_build_request(const char *token, size_t token_len,
                                       char *const *audiences, size_t n_audiences,
                                       struct kt_secret *out)
{
	json_object *root = NULL, *spec = NULL, *tokobj = NULL, *auds = NULL, *v;
	enum kt_reason r = KT_R_NOMEM;

	if (out == NULL)
		return KT_R_SYSTEM;
	*out = (struct kt_secret){ 0 };
	if (token == NULL || token_len == 0)
		return KT_R_EMPTY_TOKEN;
	if (token_len > KT_REPLY_MAX)   /* json-c takes int lengths; real tokens are ~1 KB */
		return KT_R_TOKEN_TOO_LONG;
	if (audiences == NULL || n_audiences == 0)
		return KT_R_CONFIG;
	for (size_t i = 0; i < n_audiences; i++)
		if (audiences[i] == NULL || audiences[i][0] == '\0')
			return KT_R_CONFIG;

	root = json_object_new_object();
	spec = json_object_new_object();
	auds = json_object_new_array_ext((int)n_audiences);
	if (root == NULL || spec == NULL || auds == NULL)
		goto out;
	/* key order is insertion order: apiVersion, kind, spec{token, audiences} */
	if ((v = json_object_new_string("authentication.k8s.io/v1")) == NULL ||
	    json_object_object_add(root, "apiVersion", v) != 0)
		goto out_v;
	if ((v = json_object_new_string("TokenReview")) == NULL ||
	    json_object_object_add(root, "kind", v) != 0)
		goto out_v;
	/* a literal string: json-c escapes it, so the token can never add JSON structure */
	if ((tokobj = json_object_new_string_len(token, (int)token_len)) == NULL)
		goto out;
	if (json_object_object_add(spec, "token", tokobj) != 0) {
		kt_json_scrub_string(tokobj);
		json_object_put(tokobj);
		tokobj = NULL;
		goto out;
	}
	for (size_t i = 0; i < n_audiences; i++) {
		if ((v = json_object_new_string(audiences[i])) == NULL ||
		    json_object_array_add(auds, v) != 0)
			goto out_v;
	}
	if (json_object_object_add(spec, "audiences", auds) != 0)
		goto out;
	auds = NULL;
	if (json_object_object_add(root, "spec", spec) != 0)
		goto out;
	spec = NULL;

	r = kt_json_serialise_secret(root, out);
	goto out;
out_v:
	json_object_put(v);
out:
	kt_json_scrub_string(tokobj);
	json_object_put(auds);
	json_object_put(spec);
	json_object_put(root);
	return r;
}

/* ------------------------------------------------------------ typed access */

/* Absent, or a string without NUL. */
static bool opt_string_ok(json_object *obj, const char *key)
{
	return !kt_json_has(obj, key) || kt_json_string(kt_json_member(obj, key), NULL) != NULL;
}

static bool opt_string_array_ok(json_object *obj, const char *key)
{
	return !kt_json_has(obj, key) || kt_json_string_array(kt_json_member(obj, key));
}

/* Types of every TokenReviewStatus / UserInfo field present (what Go's decoder enforces). */
static bool status_types_ok(json_object *status)
{
	json_object *user, *extra;

	if (kt_json_has(status, "authenticated") &&
	    !json_object_is_type(kt_json_member(status, "authenticated"), json_type_boolean))
		return false;
	if (!opt_string_ok(status, "error") || !opt_string_array_ok(status, "audiences"))
		return false;
	if (!kt_json_has(status, "user"))
		return true;
	user = kt_json_member(status, "user");
	if (user == NULL || !json_object_is_type(user, json_type_object))
		return false;
	if (!opt_string_ok(user, "username") || !opt_string_ok(user, "uid") ||
	    !opt_string_array_ok(user, "groups"))
		return false;
	if (!kt_json_has(user, "extra"))
		return true;
	extra = kt_json_member(user, "extra");
	if (extra == NULL || !json_object_is_type(extra, json_type_object))
		return false;
	{
		json_object_object_foreach(extra, key, val) {
			(void)key;
			if (!kt_json_string_array(val))
				return false;
		}
	}
	return true;
}

/* ---------------------------------------------------------------- identity */

static bool dns_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* RFC 1123 label as Kubernetes checks it: [a-z0-9]([-a-z0-9]*[a-z0-9])? */
static bool dns_label(const char *s, size_t n)
{
	if (n == 0 || !dns_char(s[0]) || !dns_char(s[n - 1]))
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (!dns_char(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* Kubernetes IsDNS1123Subdomain: <= 253 chars, '.'-separated labels of the same charset. */
static bool dns_subdomain(const char *s, size_t n)
{
	size_t start = 0;

	if (n == 0 || n > KT_NAME_MAX)
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (!dns_label(s + start, i - start))
				return false;
			start = i + 1;
		}
	}
	return true;
}

/* Printable ASCII (space allowed only when allow_space), 1..max bytes. */
static bool printable(const char *s, size_t n, size_t max, bool allow_space)
{
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c > 0x7e || c < 0x20 || (c == 0x20 && !allow_space))
			return false;
	}
	return true;
}

static bool audience_ok(json_object *auds, char *const *want, size_t n_want)
{
	size_t n;

	if (auds == NULL || want == NULL)
		return false;
	n = json_object_array_length(auds);
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *got = kt_json_string(json_object_array_get_idx(auds, i), &len);

		if (got == NULL)
			continue;   /* cannot happen after status_types_ok */
		for (size_t w = 0; w < n_want; w++)
			if (want[w] != NULL && strlen(want[w]) == len && memcmp(want[w], got, len) == 0)
				return true;
	}
	return false;
}

/* extra[key][0], validated; *dst stays NULL when the key is absent or empty. */
static enum kt_reason take_extra(json_object *extra, const char *suffix, char **dst)
{
	char key[64];
	json_object *arr, *first;
	const char *s;
	size_t len;

	if (extra == NULL)
		return KT_R_OK;
	memcpy(key, KT_EXTRA_PREFIX, sizeof(KT_EXTRA_PREFIX) - 1);
	memcpy(key + sizeof(KT_EXTRA_PREFIX) - 1, suffix, strlen(suffix) + 1);
	arr = kt_json_member(extra, key);
	if (arr == NULL || json_object_array_length(arr) == 0)
		return KT_R_OK;
	first = json_object_array_get_idx(arr, 0);
	s = kt_json_string(first, &len);
	if (s == NULL)
		return KT_R_MALFORMED_REPLY;
	if (!printable(s, len, KT_EXTRA_MAX, false))
		return KT_R_BAD_IDENTITY;
	*dst = strndup(s, len);
	return *dst == NULL ? KT_R_NOMEM : KT_R_OK;
}

static enum kt_reason take_identity(json_object *user, struct kt_identity *id)
{
	json_object *groups, *extra;
	const char *username, *uid, *ns, *name, *colon;
	size_t ulen, uidlen, nslen, namelen, ngroups;
	char want_group[sizeof(KT_SA_GROUP_PREFIX) + KT_NS_MAX];
	bool in_ns_group = false;
	enum kt_reason r;

	/* username: exactly system:serviceaccount:NS:NAME */
	username = kt_json_string(kt_json_member(user, "username"), &ulen);
	if (username == NULL || ulen <= sizeof(KT_SA_PREFIX) - 1 ||
	    memcmp(username, KT_SA_PREFIX, sizeof(KT_SA_PREFIX) - 1) != 0)
		return KT_R_NOT_SERVICEACCOUNT;
	ns = username + sizeof(KT_SA_PREFIX) - 1;
	colon = memchr(ns, ':', ulen - (size_t)(ns - username));
	if (colon == NULL)
		return KT_R_NOT_SERVICEACCOUNT;
	nslen = (size_t)(colon - ns);
	name = colon + 1;
	namelen = ulen - (size_t)(name - username);
	if (memchr(name, ':', namelen) != NULL ||
	    nslen > KT_NS_MAX || !dns_label(ns, nslen) || !dns_subdomain(name, namelen))
		return KT_R_NOT_SERVICEACCOUNT;

	/* uid */
	uid = kt_json_string(kt_json_member(user, "uid"), &uidlen);
	if (uid == NULL || !printable(uid, uidlen, KT_UID_MAX, false))
		return KT_R_BAD_IDENTITY;

	/* groups: bounded, printable, containing system:serviceaccounts:NS */
	groups = kt_json_member(user, "groups");
	if (groups == NULL)
		return KT_R_BAD_IDENTITY;
	ngroups = json_object_array_length(groups);
	if (ngroups == 0 || ngroups > KT_MAX_GROUPS)
		return KT_R_BAD_IDENTITY;
	memcpy(want_group, KT_SA_GROUP_PREFIX, sizeof(KT_SA_GROUP_PREFIX) - 1);
	memcpy(want_group + sizeof(KT_SA_GROUP_PREFIX) - 1, ns, nslen);
	want_group[sizeof(KT_SA_GROUP_PREFIX) - 1 + nslen] = '\0';
	for (size_t i = 0; i < ngroups; i++) {
		size_t glen;
		const char *g = kt_json_string(json_object_array_get_idx(groups, i), &glen);

		if (g == NULL || !printable(g, glen, KT_GROUP_MAX, true))
			return KT_R_BAD_IDENTITY;
		if (strcmp(g, want_group) == 0)
			in_ns_group = true;
	}
	if (!in_ns_group)
		return KT_R_BAD_IDENTITY;

	/* fill */
	id->groups = calloc(ngroups, sizeof(*id->groups));
	id->username = strndup(username, ulen);
	id->sa_namespace = strndup(ns, nslen);
	id->sa_name = strndup(name, namelen);
	id->uid = strndup(uid, uidlen);
	if (id->groups == NULL || id->username == NULL || id->sa_namespace == NULL ||
	    id->sa_name == NULL || id->uid == NULL)
		return KT_R_NOMEM;
	for (size_t i = 0; i < ngroups; i++) {
		id->groups[i] = strdup(json_object_get_string(json_object_array_get_idx(groups, i)));
		if (id->groups[i] == NULL)
			return KT_R_NOMEM;
		id->n_groups = i + 1;
	}

	extra = kt_json_member(user, "extra");
	if ((r = take_extra(extra, "credential-id", &id->credential_id)) != KT_R_OK ||
	    (r = take_extra(extra, "pod-name", &id->pod_name)) != KT_R_OK ||
	    (r = take_extra(extra, "pod-uid", &id->pod_uid)) != KT_R_OK ||
	    (r = take_extra(extra, "node-name", &id->node_name)) != KT_R_OK)
		return r;
	return KT_R_OK;
}

/* ------------------------------------------------------------------- reply */

enum kt_reason kt_review_parse_reply(const char *body, size_t len,
                                     char *const *audiences, size_t n_audiences,
                                     struct kt_identity *id, char *server_error)
{
	json_object *root = NULL, *status, *authn;
	enum kt_reason r = KT_R_MALFORMED_REPLY;
	const char *s;
	size_t n;

	if (server_error != NULL)
		server_error[0] = '\0';
	if (id == NULL)
		return KT_R_SYSTEM;
	memset(id, 0, sizeof(*id));
	if (body == NULL || len == 0)
		return KT_R_MALFORMED_REPLY;
	if (len > KT_REPLY_MAX)
		return KT_R_REPLY_TOO_LARGE;
	r = kt_json_parse_object(body, len, KT_REPLY_MAX_DEPTH, &root);
	if (r != KT_R_OK)
		goto out;   /* malformed, or nomem */
	r = KT_R_MALFORMED_REPLY;

	/* the echoed token is of no use to us: zero json-c's copy as early as possible */
	kt_json_scrub_echoed_token(root);

	s = kt_json_string(kt_json_member(root, "kind"), NULL);
	if (s == NULL || strcmp(s, "TokenReview") != 0)
		goto out;   /* includes kind "Status" */
	s = kt_json_string(kt_json_member(root, "apiVersion"), NULL);
	if (s == NULL || strcmp(s, "authentication.k8s.io/v1") != 0)
		goto out;
	status = kt_json_member(root, "status");
	if (status == NULL || !json_object_is_type(status, json_type_object) ||
	    !status_types_ok(status))
		goto out;

	authn = kt_json_member(status, "authenticated");
	if (authn == NULL || !json_object_get_boolean(authn)) {
		/* absent (Go omits false) or false */
		s = kt_json_string(kt_json_member(status, "error"), &n);
		if (s != NULL && server_error != NULL)
			kt_escape(s, n, server_error, KT_SERVER_ERROR_MAX + 1);
		r = KT_R_UNAUTHENTICATED;
		goto out;
	}

	/* authenticated: true (a JSON boolean, checked in status_types_ok) */
	if (!audience_ok(kt_json_member(status, "audiences"), audiences, n_audiences)) {
		r = KT_R_AUDIENCE;
		goto out;
	}
	if (kt_json_member(status, "user") == NULL)
		goto out;   /* a successful review always carries a user */
	r = take_identity(kt_json_member(status, "user"), id);
	if (r != KT_R_OK)
		kt_identity_free(id);
out:
	json_object_put(root);
	return r;
}
