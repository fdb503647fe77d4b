/*
 * SubjectAccessReview request building and strict reply validation (access.h,
 * docs/design.md §10, docs/kubernetes.md §11).
 *
 * Reply policy, the TokenReview's (review.c) applied to authorization.k8s.io/v1:
 *   1. size 1..KT_REPLY_MAX, no NUL byte; our lexer (json_strict.c); json-c STRICT with
 *      UTF-8 validation, the whole body consumed; no duplicate key anywhere;
 *   2. kind and apiVersion those of the request; spec equal to the spec we sent (a reply
 *      for another subject or other attributes is not an answer to our question);
 *   3. status an object whose fields have the types Go's decoder demands: allowed a
 *      boolean and present (the field has no omitempty), denied a boolean, reason and
 *      evaluationError strings; allowed and denied both true is a contradiction.
 * Anything else is KT_R_MALFORMED_REPLY: fail closed, as for the TokenReview.
 */
#include <json-c/json.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "json_strict.h"
#include "review.h"
#include "secure.h"

/* ------------------------------------------------------------ templates */

static bool template_char(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e;
}

const char *kt_access_check_template(const char *v)
{
	size_t n = strlen(v);

	if (n > KT_ACCESS_VALUE_MAX)
		return "is longer than 253 characters";
	for (size_t i = 0; i < n; i++) {
		if (!template_char((unsigned char)v[i]))
			return "holds a space or a character outside printable ASCII";
		if (v[i] == '%') {
			if (v[i + 1] != 'h' && v[i + 1] != 'u' && v[i + 1] != 's' && v[i + 1] != '%')
				return "holds a '%' not followed by h, u, s or %";
			i++;
		}
	}
	return NULL;
}

const char *kt_access_check_host_name(const char *v)
{
	size_t n = strlen(v);

	if (n > KT_ACCESS_VALUE_MAX)
		return "is longer than 253 characters";
	for (size_t i = 0; i < n; i++)
		if (!template_char((unsigned char)v[i]) || v[i] == '%')
			return "holds a space, a '%' or a character outside printable ASCII";
	return NULL;
}

/* Appends s to out[*pos]; false when it does not fit. */
static bool put(char *out, size_t outlen, size_t *pos, const char *s, size_t n)
{
	if (n >= outlen - *pos)
		return false;
	memcpy(out + *pos, s, n);
	*pos += n;
	out[*pos] = '\0';
	return true;
}

static bool render_one(const char *tmpl, const char *host, const char *user,
                       const char *service, char *out, size_t outlen)
{
	size_t pos = 0;

	out[0] = '\0';
	for (const char *p = tmpl; *p != '\0'; p++) {
		const char *s = p;
		size_t n = 1;

		if (*p == '%') {
			p++;
			s = *p == 'h' ? host : *p == 'u' ? user : *p == 's' ? service : "%";
			n = strlen(s);
		}
		if (!put(out, outlen, &pos, s, n))
			return false;
	}
	return true;
}

/* RFC 1123 label, what the API server demands of a namespace. */
static bool dns_label(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* A rendered value: printable ASCII without spaces (a %u or %s may bring anything). */
static bool value_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (!template_char((unsigned char)*s))
			return false;
	return true;
}

static enum kt_reason host_name(const struct kt_config *cfg, char *out, size_t outlen,
                                char *detail, size_t detail_len)
{
	if (cfg->host_name != NULL) {
		snprintf(out, outlen, "%s", cfg->host_name);
		return KT_R_OK;
	}
	if (gethostname(out, outlen) != 0 || memchr(out, '\0', outlen) == NULL || out[0] == '\0' ||
	    !value_ok(out)) {
		snprintf(detail, detail_len, "access review: no usable host name (set host_name)");
		return KT_R_CONFIG;
	}
	return KT_R_OK;
}

enum kt_reason kt_access_render(const struct kt_config *cfg, const char *user,
                                const char *service, struct kt_access_attrs *a,
                                char *detail, size_t detail_len)
{
	const struct { const char *key, *tmpl; char *out; bool required; } fields[] = {
		{ "access_namespace", cfg->access_namespace, a->namespace_, false },
		{ "access_group", cfg->access_group, a->group, false },
		{ "access_resource", cfg->access_resource, a->resource, true },
		{ "access_subresource", cfg->access_subresource, a->subresource, false },
		{ "access_verb", cfg->access_verb, a->verb, true },
		{ "access_name", cfg->access_name, a->name, false },
	};
	char host[HOST_NAME_MAX + 1];
	enum kt_reason r;

	memset(a, 0, sizeof(*a));
	if ((r = host_name(cfg, host, sizeof(host), detail, detail_len)) != KT_R_OK)
		return r;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *why = NULL;

		if (fields[i].tmpl == NULL)
			continue;
		if (!render_one(fields[i].tmpl, host, user != NULL ? user : "",
		                service != NULL ? service : "", fields[i].out, KT_ACCESS_VALUE_MAX + 1))
			why = "renders longer than 253 characters";
		else if (!value_ok(fields[i].out))
			why = "renders a space or a character outside printable ASCII";
		else if (fields[i].required && fields[i].out[0] == '\0')
			why = "renders empty";
		else if (fields[i].out == a->namespace_ && a->namespace_[0] != '\0' &&
		         !dns_label(a->namespace_))
			why = "does not render a namespace name (RFC 1123 label)";
		else if ((fields[i].out == a->resource || fields[i].out == a->subresource) &&
		         strchr(fields[i].out, '/') != NULL)
			why = "renders a '/'";
		if (why != NULL) {
			snprintf(detail, detail_len, "access review: %s %s", fields[i].key, why);
			return KT_R_CONFIG;
		}
	}
	return KT_R_OK;
}

void kt_access_describe(const struct kt_access_attrs *a, char *out, size_t outlen)
{
	const struct { const char *key, *value; } fields[] = {
		{ "namespace", a->namespace_ }, { "verb", a->verb }, { "group", a->group },
		{ "resource", a->resource }, { "subresource", a->subresource }, { "name", a->name },
	};
	size_t pos = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		int n;

		if (fields[i].value[0] == '\0')
			continue;
		n = snprintf(out + pos, outlen - pos, "%s%s=%s", pos ? " " : "", fields[i].key,
		             fields[i].value);
		if (n < 0 || (size_t)n >= outlen - pos)
			return;   /* cut: still NUL-terminated by snprintf */
		pos += (size_t)n;
	}
}

/* ------------------------------------------------------------- json helpers */

/* An untrusted reply, parsed the one strict way (json_strict.h) within the reply cap. */
static enum kt_reason parse_strict(const char *body, size_t len, json_object **root)
{
	*root = NULL;
	if (len > KT_REPLY_MAX)
		return KT_R_REPLY_TOO_LARGE;
	return kt_json_parse_object(body, len, KT_REPLY_MAX_DEPTH, root);
}

/* out[key] = a new string (skipped when value is empty and optional). */
static int add_string(json_object *out, const char *key, const char *value)
{
	json_object *v;

	if (value[0] == '\0')
		return 0;
	if ((v = json_object_new_string(value)) == NULL)
		return -1;
	if (json_object_object_add(out, key, v) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

/* out[key] = v, shared by reference. */
static int add_shared(json_object *out, const char *key, json_object *v)
{
	if (json_object_object_add(out, key, json_object_get(v)) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

static json_object *new_child(json_object *out, const char *key)
{
	json_object *o = json_object_new_object();

	if (o != NULL && json_object_object_add(out, key, o) != 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* {"apiVersion":"authorization.k8s.io/v1","kind":KIND,"spec":{}}; *spec is the empty spec. */
static json_object *new_review(const char *kind, json_object **spec)
{
	json_object *root = json_object_new_object();

	if (root == NULL)
		return NULL;
	if (add_string(root, "apiVersion", "authorization.k8s.io/v1") < 0 ||
	    add_string(root, "kind", kind) < 0 || (*spec = new_child(root, "spec")) == NULL) {
		json_object_put(root);
		return NULL;
	}
	return root;
}

static int add_attributes(json_object *spec, const struct kt_access_attrs *a)
{
	json_object *ra = new_child(spec, "resourceAttributes");

	/* the order kube-apiserver's Go structs print them in */
	return ra == NULL || add_string(ra, "namespace", a->namespace_) < 0 ||
	       add_string(ra, "verb", a->verb) < 0 || add_string(ra, "group", a->group) < 0 ||
	       add_string(ra, "resource", a->resource) < 0 ||
	       add_string(ra, "subresource", a->subresource) < 0 ||
	       add_string(ra, "name", a->name) < 0 ? -1 : 0;
}

/* status.user of a TokenReview reply, its fields of the right types, or NULL. */
static json_object *reviewed_user(json_object *reply)
{
	json_object *user = kt_json_member(kt_json_member(reply, "status"), "user"), *extra;

	if (user == NULL || !json_object_is_type(user, json_type_object) ||
	    kt_json_string(kt_json_member(user, "username"), NULL) == NULL ||
	    (kt_json_has(user, "uid") && kt_json_string(kt_json_member(user, "uid"), NULL) == NULL) ||
	    (kt_json_has(user, "groups") && !kt_json_string_array(kt_json_member(user, "groups"))))
		return NULL;
	if (!kt_json_has(user, "extra"))
		return user;
	extra = kt_json_member(user, "extra");
	if (extra == NULL || !json_object_is_type(extra, json_type_object))
		return NULL;
	{
		json_object_object_foreach(extra, key, val) {
			(void)key;
			if (!kt_json_string_array(val))
				return NULL;
		}
	}
	return user;
}

enum kt_reason kt_access_build_request(const char *tokenreview, size_t len,
                                       const struct kt_access_attrs *a, struct kt_secret *out)
{
	json_object *reply = NULL, *root = NULL, *spec = NULL, *user;
	enum kt_reason r;
	static const char *const copied[] = { "groups", "extra", "uid" };

	*out = (struct kt_secret){ 0 };
	r = parse_strict(tokenreview, len, &reply);
	if (r != KT_R_OK)
		return r;
	kt_json_scrub_echoed_token(reply);
	r = KT_R_MALFORMED_REPLY;
	if ((user = reviewed_user(reply)) == NULL)
		goto out;
	r = KT_R_NOMEM;
	if ((root = new_review("SubjectAccessReview", &spec)) == NULL ||
	    add_attributes(spec, a) < 0 || add_shared(spec, "user", kt_json_member(user, "username")) < 0)
		goto out;
	for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++)
		if (kt_json_member(user, copied[i]) != NULL &&
		    add_shared(spec, copied[i], kt_json_member(user, copied[i])) < 0)
			goto out;
	r = kt_json_serialise_secret(root, out);
out:
	json_object_put(root);
	json_object_put(reply);
	return r;
}

enum kt_reason kt_access_build_self_request(struct kt_secret *out)
{
	struct kt_access_attrs a = { .verb = "create", .group = "authorization.k8s.io",
	                             .resource = "subjectaccessreviews" };
	json_object *spec = NULL, *root = new_review("SelfSubjectAccessReview", &spec);
	enum kt_reason r = KT_R_NOMEM;

	*out = (struct kt_secret){ 0 };
	if (root != NULL && add_attributes(spec, &a) == 0)
		r = kt_json_serialise_secret(root, out);
	json_object_put(root);
	return r;
}

/* ------------------------------------------------------------------ reply */

static bool bool_or_absent(json_object *obj, const char *key)
{
	return !kt_json_has(obj, key) || json_object_is_type(kt_json_member(obj, key), json_type_boolean);
}

static bool string_or_absent(json_object *obj, const char *key)
{
	return !kt_json_has(obj, key) || kt_json_string(kt_json_member(obj, key), NULL) != NULL;
}

static bool same_string(json_object *a, json_object *b, const char *key)
{
	const char *x = kt_json_string(kt_json_member(a, key), NULL), *y = kt_json_string(kt_json_member(b, key), NULL);

	return x != NULL && y != NULL && strcmp(x, y) == 0;
}

/* "reason" or "reason; evaluationError", escaped and capped. */
static void take_reason(json_object *status, char *out)
{
	char both[2 * KT_ACCESS_REASON_MAX + 8];
	const char *reason = kt_json_string(kt_json_member(status, "reason"), NULL);
	const char *error = kt_json_string(kt_json_member(status, "evaluationError"), NULL);

	snprintf(both, sizeof(both), "%s%s%s", reason != NULL ? reason : "",
	         reason != NULL && error != NULL ? "; " : "", error != NULL ? error : "");
	kt_escape(both, strlen(both), out, KT_ACCESS_REASON_MAX + 1);
}

enum kt_reason kt_access_parse_reply(const char *body, size_t len, const char *request,
                                     size_t request_len, char *reason)
{
	json_object *root = NULL, *sent = NULL, *status;
	enum kt_reason r;
	bool allowed, denied;

	if (reason != NULL)
		reason[0] = '\0';
	if ((r = parse_strict(request, request_len, &sent)) != KT_R_OK)
		return r == KT_R_NOMEM ? r : KT_R_SYSTEM;   /* our own request: cannot happen */
	r = parse_strict(body, len, &root);
	if (r != KT_R_OK)
		goto out;
	r = KT_R_MALFORMED_REPLY;
	if (!same_string(root, sent, "kind") || !same_string(root, sent, "apiVersion") ||
	    kt_json_member(root, "spec") == NULL ||
	    !json_object_equal(kt_json_member(root, "spec"), kt_json_member(sent, "spec")))
		goto out;   /* includes kind "Status" and an answer about another subject */
	status = kt_json_member(root, "status");
	if (status == NULL || !json_object_is_type(status, json_type_object) ||
	    !kt_json_has(status, "allowed") || !bool_or_absent(status, "allowed") ||
	    !bool_or_absent(status, "denied") || !string_or_absent(status, "reason") ||
	    !string_or_absent(status, "evaluationError"))
		goto out;
	allowed = json_object_get_boolean(kt_json_member(status, "allowed"));
	denied = kt_json_member(status, "denied") != NULL && json_object_get_boolean(kt_json_member(status, "denied"));
	if (allowed && denied)
		goto out;
	if (!allowed && reason != NULL)
		take_reason(status, reason);
	r = allowed ? KT_R_OK : KT_R_ACCESS_DENIED;
out:
	json_object_put(root);
	json_object_put(sent);
	return r;
}

bool kt_access_reason_has_identity(enum kt_reason r)
{
	return r == KT_R_OK || r == KT_R_ACCESS_DENIED || r == KT_R_DENY_RULE || r == KT_R_NOT_MAPPED;
}
