/*
 * Unit tests for review.c: the TokenReview request and the strict reply validator.
 *
 * Corpus: every file in KT_REPLIES_DIR (default tests/unit/data/replies, relative to the
 * repository root; override with the environment variable KT_REPLIES_DIR) is parsed with
 * the configured audiences {"pam-test", "ssh://bastion-1"}; the file-name prefix states
 * the expected outcome:
 *   ok_ -> KT_R_OK              unauth_ -> KT_R_UNAUTHENTICATED   audience_ -> KT_R_AUDIENCE
 *   notsa_ -> KT_R_NOT_SERVICEACCOUNT   badid_ -> KT_R_BAD_IDENTITY
 *   malformed_ -> KT_R_MALFORMED_REPLY  toolarge_ -> KT_R_REPLY_TOO_LARGE
 * Every prefix of every ok_ file that stops before its closing brace must be refused, and
 * single-byte mutations of ok_ files must never yield an identity that breaks the
 * invariants (username = system:serviceaccount:NS:NAME, uid set, group of NS present).
 *
 * At the end the binary prints how many bad replies were tried and how many were
 * accepted (must be 0). Set KT_NO_TIMING=1 to skip the A10 time limit (valgrind).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "identity.h"
#include "reason.h"
#include "review.h"
#include "secure.h"

#ifndef KT_REPLIES_DIR
#define KT_REPLIES_DIR "tests/unit/data/replies"
#endif

static unsigned long hostile_tried;   /* inputs that must not be accepted */
static unsigned long false_accepts;   /* ... and were */
static unsigned long good_tried;      /* inputs that must be accepted */
static unsigned long mutants_tried, mutants_accepted;

static char *const corpus_auds[] = { "pam-test", "ssh://bastion-1" };
static char *const ours[] = { "ours" };

#define TOKEN "eyJhbGciOiJSUzI1NiIsImtpZCI6ImFiYyJ9.eyJzdWIiOiJ4In0.c2ln"
#define UID "8f5660ff-e115-44f9-9aeb-e060246c6860"
#define GROUPS_PAM "[\"system:serviceaccounts\",\"system:serviceaccounts:pam\",\"system:authenticated\"]"

/* ------------------------------------------------------------------ helpers */

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	return s;
}

/* A whole reply around a status object. */
static char *reply_with_status(const char *status)
{
	return xasprintf("{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\","
	                 "\"metadata\":{\"creationTimestamp\":null},"
	                 "\"spec\":{\"token\":\"" TOKEN "\",\"audiences\":[\"ours\"]},"
	                 "\"status\":%s}\n", status);
}

/* Reply for an authenticated user object with the given audiences (JSON text). */
static char *reply_auth(const char *user, const char *audiences)
{
	char *status, *r;

	if (audiences != NULL)
		status = xasprintf("{\"authenticated\":true,\"user\":%s,\"audiences\":%s}", user, audiences);
	else
		status = xasprintf("{\"authenticated\":true,\"user\":%s}", user);
	r = reply_with_status(status);
	free(status);
	return r;
}

static char *user_json(const char *username_json, const char *uid_json, const char *groups_json)
{
	return xasprintf("{\"username\":%s,\"uid\":%s,\"groups\":%s,\"extra\":{"
	                 "\"authentication.kubernetes.io/credential-id\":[\"JTI=50fca286-b600-45ce-bfec-788b20fabc5b\"],"
	                 "\"authentication.kubernetes.io/pod-name\":[\"my-app-5d9c7b6f4-x2x7k\"]}}",
	                 username_json, uid_json, groups_json);
}

static bool id_is_zero(const struct kt_identity *id)
{
	static const struct kt_identity zero;

	return memcmp(id, &zero, sizeof(zero)) == 0;
}

static bool dns_ok(const char *s, size_t n, bool dots)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		bool edge = i == 0 || i == n - 1 || (dots && (s[i - 1] == '.' || s[i + 1] == '.'));

		if (dots && c == '.' && !edge)
			continue;
		if (!alnum && (c != '-' || edge))
			return false;
	}
	return true;
}

/* Independent oracle for an accepted identity. */
static void check_identity_invariants(const struct kt_identity *id)
{
	char *want;
	bool found = false;
	size_t nslen, namelen;

	assert_non_null(id->username);
	assert_non_null(id->sa_namespace);
	assert_non_null(id->sa_name);
	assert_non_null(id->uid);
	assert_true(id->uid[0] != '\0');
	nslen = strlen(id->sa_namespace);
	namelen = strlen(id->sa_name);
	assert_true(nslen <= 63 && namelen <= 253);
	assert_true(dns_ok(id->sa_namespace, nslen, false));
	assert_true(dns_ok(id->sa_name, namelen, true));
	want = xasprintf("system:serviceaccount:%s:%s", id->sa_namespace, id->sa_name);
	assert_string_equal(id->username, want);
	free(want);
	want = xasprintf("system:serviceaccounts:%s", id->sa_namespace);
	assert_true(id->n_groups >= 1 && id->n_groups <= KT_MAX_GROUPS);
	for (size_t i = 0; i < id->n_groups; i++) {
		assert_non_null(id->groups[i]);
		if (strcmp(id->groups[i], want) == 0)
			found = true;
	}
	free(want);
	assert_true(found);
}

static void check_server_error(const char *e)
{
	size_t n = strlen(e);

	assert_true(n <= KT_SERVER_ERROR_MAX);
	for (size_t i = 0; i < n; i++)
		assert_true(e[i] >= 0x20 && e[i] <= 0x7e);
}

/* Parses body[0..len) from an exact-size copy (so ASan sees any over-read). */
static enum kt_reason parse_copy(const char *body, size_t len, char *const *auds, size_t n_auds,
                                 struct kt_identity *id, char *err)
{
	char *copy;
	enum kt_reason r;

	if (body == NULL)
		return kt_review_parse_reply(NULL, len, auds, n_auds, id, err);
	copy = malloc(len ? len : 1);
	assert_non_null(copy);
	if (len)
		memcpy(copy, body, len);
	r = kt_review_parse_reply(copy, len, auds, n_auds, id, err);
	free(copy);
	return r;
}

/* Runs one case, counts it, checks the generic post-conditions. */
static enum kt_reason run_case(const char *body, size_t len, char *const *auds, size_t n_auds,
                               enum kt_reason want)
{
	struct kt_identity id;
	char err[KT_SERVER_ERROR_MAX + 1];
	enum kt_reason r;

	memset(&id, 0xa5, sizeof(id));   /* the parser must overwrite whatever is there */
	memset(err, 'x', sizeof(err));
	r = parse_copy(body, len, auds, n_auds, &id, err);
	if (want == KT_R_OK) {
		good_tried++;
	} else {
		hostile_tried++;
		if (r == KT_R_OK)
			false_accepts++;
	}
	if (r == KT_R_OK) {
		check_identity_invariants(&id);
		kt_identity_free(&id);
	} else {
		assert_true(id_is_zero(&id));
	}
	check_server_error(err);
	if (r != KT_R_UNAUTHENTICATED)
		assert_string_equal(err, "");
	return r;
}

static void expect_reply(const char *body, enum kt_reason want)
{
	enum kt_reason r = run_case(body, strlen(body), ours, 1, want);

	if (r != want)
		fail_msg("expected %s, got %s for: %.300s", kt_reason_name(want), kt_reason_name(r), body);
}

/* Takes ownership of body. */
static void expect_reply_free(char *body, enum kt_reason want)
{
	expect_reply(body, want);
	free(body);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool timing_enabled(void)
{
	const char *e = getenv("KT_NO_TIMING");

	return e == NULL || e[0] == '\0' || strcmp(e, "0") == 0;
}

/* ------------------------------------------------------------ request tests */

static void test_request_exact(void **state)
{
	char *const auds[] = { "a", "b" };
	struct kt_secret out;

	(void)state;
	assert_int_equal(kt_review_build_request("x.y.z", 5, auds, 2, &out), KT_R_OK);
	assert_string_equal(out.p, "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
	                           "\"spec\":{\"token\":\"x.y.z\",\"audiences\":[\"a\",\"b\"]}}");
	assert_int_equal(out.len, strlen(out.p));
	kt_secret_free(&out);

	assert_int_equal(kt_review_build_request(TOKEN, strlen(TOKEN), corpus_auds, 2, &out), KT_R_OK);
	assert_string_equal(out.p, "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\","
	                           "\"spec\":{\"token\":\"" TOKEN "\",\"audiences\":[\"pam-test\",\"ssh://bastion-1\"]}}");
	kt_secret_free(&out);
}

/* Parses a request back and checks spec.token and spec.audiences. */
static void check_roundtrip(const char *token, size_t token_len, char *const *auds, size_t n)
{
	struct kt_secret out;
	json_object *root, *spec, *v, *a;

	assert_int_equal(kt_review_build_request(token, token_len, auds, n, &out), KT_R_OK);
	assert_int_equal(out.len, strlen(out.p));
	root = json_tokener_parse(out.p);
	assert_non_null(root);
	assert_int_equal(json_object_object_length(root), 3);
	assert_true(json_object_object_get_ex(root, "spec", &spec));
	assert_int_equal(json_object_object_length(spec), 2);
	assert_true(json_object_object_get_ex(spec, "token", &v));
	assert_true(json_object_is_type(v, json_type_string));
	assert_int_equal((size_t)json_object_get_string_len(v), token_len);
	assert_memory_equal(json_object_get_string(v), token, token_len);
	assert_true(json_object_object_get_ex(spec, "audiences", &a));
	assert_true(json_object_is_type(a, json_type_array));
	assert_int_equal(json_object_array_length(a), n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(json_object_get_string(json_object_array_get_idx(a, i)), auds[i]);
	json_object_put(root);
	kt_secret_free(&out);
}

static void test_request_injection(void **state)
{
	static const char *const evil[] = {
		"a.b.c\",\"audiences\":[\"https://kubernetes.default.svc",   /* D05 */
		"a.b.c\"},\"status\":{\"authenticated\":true},\"x\":{\"y\":\"",
		"\\\"\\u0000\\n\r\t</script>%n%s{}[]",
		"\xc3\xa9\xe2\x80\xae",
		"a/b/c",
	};
	char *const odd_auds[] = { "ssh://bastion-1", "q\"uote\\back/slash", "\xc3\xa9" };

	(void)state;
	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++)
		check_roundtrip(evil[i], strlen(evil[i]), corpus_auds, 2);
	check_roundtrip("a\0b", 3, ours, 1);
	check_roundtrip(TOKEN, strlen(TOKEN), odd_auds, 3);
}

static void test_request_errors(void **state)
{
	char *const bad_auds[] = { "ok", NULL };
	char *const empty_aud[] = { "" };
	struct kt_secret out = { .p = (char *)1, .len = 7, .cap = 7 };
	char *big = malloc(KT_REPLY_MAX + 2);

	(void)state;
	assert_int_equal(kt_review_build_request("", 0, ours, 1, &out), KT_R_EMPTY_TOKEN);
	assert_null(out.p);
	assert_int_equal(out.len, 0);
	assert_int_equal(kt_review_build_request(NULL, 3, ours, 1, &out), KT_R_EMPTY_TOKEN);
	assert_int_equal(kt_review_build_request("a.b.c", 5, ours, 0, &out), KT_R_CONFIG);
	assert_int_equal(kt_review_build_request("a.b.c", 5, NULL, 1, &out), KT_R_CONFIG);
	assert_int_equal(kt_review_build_request("a.b.c", 5, bad_auds, 2, &out), KT_R_CONFIG);
	assert_int_equal(kt_review_build_request("a.b.c", 5, empty_aud, 1, &out), KT_R_CONFIG);
	assert_non_null(big);
	memset(big, 'A', KT_REPLY_MAX + 1);
	assert_int_equal(kt_review_build_request(big, KT_REPLY_MAX + 1, ours, 1, &out),
	                 KT_R_TOKEN_TOO_LONG);
	assert_null(out.p);
	assert_int_equal(kt_review_build_request(big, 16384, ours, 1, &out), KT_R_OK);
	assert_int_equal(out.len, 16384 + strlen("{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":"
	                                     "\"TokenReview\",\"spec\":{\"token\":\"\",\"audiences\":[\"ours\"]}}"));
	kt_secret_free(&out);
	free(big);
}

/* ------------------------------------------------------------- corpus tests */

static enum kt_reason expected_for(const char *name, bool *known)
{
	static const struct { const char *prefix; enum kt_reason r; } map[] = {
		{ "ok_", KT_R_OK }, { "unauth_", KT_R_UNAUTHENTICATED }, { "audience_", KT_R_AUDIENCE },
		{ "notsa_", KT_R_NOT_SERVICEACCOUNT }, { "badid_", KT_R_BAD_IDENTITY },
		{ "malformed_", KT_R_MALFORMED_REPLY }, { "toolarge_", KT_R_REPLY_TOO_LARGE },
	};

	*known = true;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strncmp(name, map[i].prefix, strlen(map[i].prefix)) == 0)
			return map[i].r;
	*known = false;
	return KT_R__COUNT;
}

static char *read_file(const char *dir, const char *name, size_t *len)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	char *buf;
	long sz;

	if (f == NULL)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	sz = ftell(f);
	assert_true(sz >= 0);
	rewind(f);
	buf = malloc((size_t)sz + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	free(path);
	*len = (size_t)sz;
	return buf;
}

static int json_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 5 && strcmp(d->d_name + n - 5, ".json") == 0;
}

static const char *corpus_dir(void)
{
	const char *e = getenv("KT_REPLIES_DIR");

	return e != NULL && e[0] != '\0' ? e : KT_REPLIES_DIR;
}

/* Prefixes of an accepted reply that stop before its last '}' must all be refused. */
static void truncations(const char *body, size_t len)
{
	size_t last = len, step;

	while (last > 0 && body[last - 1] != '}')
		last--;
	assert_true(last > 0);
	step = len > 8192 ? 257 : 1;
	for (size_t p = 0; p < last; p += step)
		assert_int_equal(run_case(body, p, corpus_auds, 2, KT_R_MALFORMED_REPLY), KT_R_MALFORMED_REPLY);
}

/* Single-byte mutations: whatever is accepted must satisfy the identity invariants. */
static void mutations(const char *body, size_t len)
{
	static const unsigned char subst[] = { 0, '"', '\\', '}', ']', ',', ':', 'x', '0', '\n', 0x80, 0xff };
	char *copy;

	if (len > 8192)
		return;
	copy = malloc(len);
	assert_non_null(copy);
	for (size_t i = 0; i < len; i++) {
		for (size_t k = 0; k < sizeof(subst); k++) {
			struct kt_identity id;
			enum kt_reason r;

			if ((unsigned char)body[i] == subst[k])
				continue;
			memcpy(copy, body, len);
			copy[i] = (char)subst[k];
			r = kt_review_parse_reply(copy, len, corpus_auds, 2, &id, NULL);
			mutants_tried++;
			if (r == KT_R_OK) {
				mutants_accepted++;
				check_identity_invariants(&id);
				kt_identity_free(&id);
			} else {
				assert_true(id_is_zero(&id));
			}
		}
	}
	free(copy);
}

static void test_corpus(void **state)
{
	struct dirent **list = NULL;
	const char *dir = corpus_dir();
	int n = scandir(dir, &list, json_filter, alphasort);
	size_t per[KT_R__COUNT + 1] = { 0 };

	(void)state;
	if (n <= 0)
		fail_msg("no corpus in %s (run from the repository root or set KT_REPLIES_DIR)", dir);
	for (int i = 0; i < n; i++) {
		const char *name = list[i]->d_name;
		bool known;
		enum kt_reason want = expected_for(name, &known), r;
		size_t len;
		char *body;

		if (!known)
			fail_msg("corpus file %s has no known outcome prefix", name);
		body = read_file(dir, name, &len);
		r = run_case(body, len, corpus_auds, 2, want);
		if (r != want)
			fail_msg("%s: expected %s, got %s", name, kt_reason_name(want), kt_reason_name(r));
		per[want]++;
		if (want == KT_R_OK) {
			truncations(body, len);
			mutations(body, len);
		}
		free(body);
		free(list[i]);
	}
	free(list);
	printf("# corpus %s: %d files (ok %zu, unauth %zu, audience %zu, notsa %zu, badid %zu, "
	       "malformed %zu, toolarge %zu)\n", dir, n, per[KT_R_OK], per[KT_R_UNAUTHENTICATED],
	       per[KT_R_AUDIENCE], per[KT_R_NOT_SERVICEACCOUNT], per[KT_R_BAD_IDENTITY],
	       per[KT_R_MALFORMED_REPLY], per[KT_R_REPLY_TOO_LARGE]);
	printf("# mutants of ok_ files: %lu tried, %lu accepted, all accepted satisfy the invariants\n",
	       mutants_tried, mutants_accepted);
}

/* ------------------------------------------------------------- inline tests */

static void test_a01_identity(void **state)
{
	char *u = xasprintf("{\"username\":\"system:serviceaccount:pam:pam-user\",\"uid\":\"" UID "\","
	                    "\"groups\":" GROUPS_PAM ",\"extra\":{"
	                    "\"authentication.kubernetes.io/credential-id\":[\"JTI=50fca286-b600-45ce-bfec-788b20fabc5b\",\"second\"],"
	                    "\"authentication.kubernetes.io/node-name\":[\"worker-1\"],"
	                    "\"authentication.kubernetes.io/node-uid\":[\"517eb86e\"],"
	                    "\"authentication.kubernetes.io/pod-name\":[\"my-app-5d9c7b6f4-x2x7k\"],"
	                    "\"authentication.kubernetes.io/pod-uid\":[\"0d8b260e-ef0e-45fb-be8e-ff44f97722e8\"]}}");
	char *body = reply_auth(u, "[\"ours\"]");
	struct kt_identity id;
	char err[KT_SERVER_ERROR_MAX + 1];

	(void)state;
	assert_int_equal(kt_review_parse_reply(body, strlen(body), ours, 1, &id, err), KT_R_OK);
	good_tried++;
	assert_string_equal(err, "");
	assert_string_equal(id.username, "system:serviceaccount:pam:pam-user");
	assert_string_equal(id.sa_namespace, "pam");
	assert_string_equal(id.sa_name, "pam-user");
	assert_string_equal(id.uid, UID);
	assert_int_equal(id.n_groups, 3);
	assert_string_equal(id.groups[0], "system:serviceaccounts");
	assert_string_equal(id.groups[1], "system:serviceaccounts:pam");
	assert_string_equal(id.groups[2], "system:authenticated");
	assert_string_equal(id.credential_id, "JTI=50fca286-b600-45ce-bfec-788b20fabc5b");
	assert_string_equal(id.pod_name, "my-app-5d9c7b6f4-x2x7k");
	assert_string_equal(id.pod_uid, "0d8b260e-ef0e-45fb-be8e-ff44f97722e8");
	assert_string_equal(id.node_name, "worker-1");
	kt_identity_free(&id);
	assert_true(id_is_zero(&id));
	free(body);
	free(u);

	/* legacy token: no extra at all; NULL server_error accepted */
	u = user_json("\"system:serviceaccount:default:build-robot\"", "\"" UID "\"",
	              "[\"system:serviceaccounts:default\"]");
	body = reply_auth(u, "[\"x\",\"ours\"]");
	assert_int_equal(kt_review_parse_reply(body, strlen(body), ours, 1, &id, NULL), KT_R_OK);
	good_tried++;
	assert_string_equal(id.sa_name, "build-robot");
	assert_int_equal(id.n_groups, 1);
	kt_identity_free(&id);
	free(body);
	free(u);
}

static void test_a02_unauthenticated(void **state)
{
	char err[KT_SERVER_ERROR_MAX + 1];
	struct kt_identity id;
	const char *b;

	(void)state;
	expect_reply_free(reply_with_status("{\"user\":{}}"), KT_R_UNAUTHENTICATED);
	expect_reply_free(reply_with_status("{}"), KT_R_UNAUTHENTICATED);
	expect_reply_free(reply_with_status("{\"authenticated\":false,\"user\":{}}"), KT_R_UNAUTHENTICATED);
	expect_reply_free(reply_with_status("{\"user\":{},\"error\":\"invalid bearer token\"}"), KT_R_UNAUTHENTICATED);
	expect_reply_free(reply_with_status("{\"authenticated\":false,\"user\":{},\"error\":\"x\"}"), KT_R_UNAUTHENTICATED);

	b = "{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{\"creationTimestamp\":null},"
	    "\"spec\":{\"token\":\"somebadvalue\"},\"status\":{\"user\":{},\"error\":"
	    "\"[invalid bearer token, service account token has expired]\"}}\n";
	assert_int_equal(kt_review_parse_reply(b, strlen(b), ours, 1, &id, err), KT_R_UNAUTHENTICATED);
	assert_string_equal(err, "[invalid bearer token, service account token has expired]");
	b = "{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\",\"spec\":{},"
	    "\"status\":{\"error\":\"token audiences [\\\"A\\\" \\\"C\\\"] is invalid\"}}";
	assert_int_equal(kt_review_parse_reply(b, strlen(b), ours, 1, &id, err), KT_R_UNAUTHENTICATED);
	assert_string_equal(err, "token audiences [\\\"A\\\" \\\"C\\\"] is invalid");
}

static void test_a03_coercion(void **state)
{
	static const char *const vals[] = {
		"\"true\"", "\"false\"", "\"\"", "1", "0", "-1", "0.0001", "1e0", "{}", "[]", "[true]",
		"null", "{\"value\":true}", "\"True\"",
	};
	char *u = user_json("\"system:serviceaccount:pam:pam-user\"", "\"" UID "\"", GROUPS_PAM);

	(void)state;
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		char *st = xasprintf("{\"authenticated\":%s,\"user\":%s,\"audiences\":[\"ours\"]}", vals[i], u);

		expect_reply_free(reply_with_status(st), KT_R_MALFORMED_REPLY);
		free(st);
	}
	/* missing -> a definitive "no", never success */
	{
		char *st = xasprintf("{\"user\":%s,\"audiences\":[\"ours\"]}", u);

		expect_reply_free(reply_with_status(st), KT_R_UNAUTHENTICATED);
		free(st);
	}
	expect_reply_free(reply_auth(u, "[\"ours\"]"), KT_R_OK);
	free(u);
}

static void test_a04_audiences(void **state)
{
	static const char *const deny[] = {
		NULL, "[]", "[\"https://kubernetes.default.svc\"]", "[\"ours-evil\"]", "[\"OURS\"]",
		"[\"ours \"]", "[\" ours\"]", "[\"our\"]", "[\"oursours\"]", "[\"\"]", "[\"o\\u0075rs2\"]",
	};
	static const char *const allow[] = {
		"[\"ours\"]", "[\"x\",\"ours\"]", "[\"ours\",\"x\"]", "[\"o\\u0075rs\"]",
	};
	char *u = user_json("\"system:serviceaccount:pam:pam-user\"", "\"" UID "\"", GROUPS_PAM);
	char *body;
	char *const two[] = { "a", "ours" };

	(void)state;
	for (size_t i = 0; i < sizeof(deny) / sizeof(deny[0]); i++)
		expect_reply_free(reply_auth(u, deny[i]), KT_R_AUDIENCE);
	for (size_t i = 0; i < sizeof(allow) / sizeof(allow[0]); i++)
		expect_reply_free(reply_auth(u, allow[i]), KT_R_OK);
	expect_reply_free(reply_auth(u, "[\"ours\\u0000\"]"), KT_R_MALFORMED_REPLY);
	expect_reply_free(reply_auth(u, "[1]"), KT_R_MALFORMED_REPLY);
	expect_reply_free(reply_auth(u, "\"ours\""), KT_R_MALFORMED_REPLY);

	/* several configured audiences: any one of them suffices; none configured: deny */
	body = reply_auth(u, "[\"ours\"]");
	assert_int_equal(run_case(body, strlen(body), two, 2, KT_R_OK), KT_R_OK);
	assert_int_equal(run_case(body, strlen(body), two, 0, KT_R_AUDIENCE), KT_R_AUDIENCE);
	assert_int_equal(run_case(body, strlen(body), NULL, 0, KT_R_AUDIENCE), KT_R_AUDIENCE);
	free(body);
	free(u);
}

static void expect_username(const char *username_json, enum kt_reason want)
{
	char *u = user_json(username_json, "\"" UID "\"", GROUPS_PAM);

	expect_reply_free(reply_auth(u, "[\"ours\"]"), want);
	free(u);
}

static void test_a05_usernames(void **state)
{
	static const char *const notsa[] = {
		"\"kubernetes-admin\"", "\"system:node:n1\"", "\"system:bootstrap:abc\"", "\"oidc:jane\"",
		"\"system:anonymous\"", "\"system:serviceaccount:pam\"", "\"system:serviceaccount:a:b:c\"",
		"\"system:serviceaccount::sa\"", "\"system:serviceaccount:pam:\"", "\"system:serviceaccount:PAM:sa\"",
		"\"system:serviceaccount:pam:sa\\n\"", "\"system:serviceaccount:pam:s\\u00e1\"",
		"\"system:serviceaccount:pam:s\xc3\xa1\"", "\"system:serviceaccounts:pam:sa\"",
		"\"system:serviceaccount:pam:sa:\"", "\":system:serviceaccount:pam:sa\"", "\"\"",
		"\"system:serviceaccount:\"", "\"system:serviceaccount:pam:-sa\"", "\"system:serviceaccount:pam:sa-\"",
		"\"system:serviceaccount:pam:a..b\"", "\"system:serviceaccount:pam:a.\"",
		"\"system:serviceaccount:p.am:sa\"", "\"system:serviceaccount:pam:s a\"",
		"\"system:serviceaccount:pam:sa\\r\"", "\"system:serviceaccount:pam:sa\\t\"",
		"\"system:serviceaccount:pam:\\u001b[31m\"",
	};
	char name300[340], ns64[120], name253[300], name254[300];

	(void)state;
	for (size_t i = 0; i < sizeof(notsa) / sizeof(notsa[0]); i++)
		expect_username(notsa[i], KT_R_NOT_SERVICEACCOUNT);
	expect_username("\"system:serviceaccount:pam:sa\\u0000evil\"", KT_R_MALFORMED_REPLY);
	expect_username("null", KT_R_MALFORMED_REPLY);
	expect_username("1", KT_R_MALFORMED_REPLY);
	expect_username("\"system:serviceaccount:pam:sa\xff\"", KT_R_MALFORMED_REPLY);

	snprintf(name300, sizeof(name300), "\"system:serviceaccount:pam:%0300d\"", 0);
	expect_username(name300, KT_R_NOT_SERVICEACCOUNT);
	snprintf(name253, sizeof(name253), "\"system:serviceaccount:pam:%0253d\"", 0);
	expect_username(name253, KT_R_OK);
	snprintf(name254, sizeof(name254), "\"system:serviceaccount:pam:%0254d\"", 0);
	expect_username(name254, KT_R_NOT_SERVICEACCOUNT);
	/* namespace of 64 chars: not a DNS label (and its group would not match either) */
	snprintf(ns64, sizeof(ns64), "\"system:serviceaccount:%064d:sa\"", 0);
	expect_username(ns64, KT_R_NOT_SERVICEACCOUNT);
	expect_username("\"system:serviceaccount:pam:a.b-c.d0\"", KT_R_OK);
	expect_username("\"system:serviceaccount:pam:0\"", KT_R_OK);
}

/*
 * Every byte value placed in the namespace and in the name of an otherwise valid
 * username: only [a-z0-9] (and '-' / '.' where a DNS rule allows them) may pass.
 */
static void test_a05_every_byte(void **state)
{
	(void)state;
	for (int where = 0; where < 2; where++) {
		for (int b = 0; b < 256; b++) {
			char esc[8], username[128], groups[160], *u;
			enum kt_reason want;
			bool alnum = (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9');

			if (b == '"' || b == '\\' || b < 0x20)
				snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)b);
			else
				snprintf(esc, sizeof(esc), "%c", (char)b);
			if (where == 0) {
				snprintf(username, sizeof(username), "\"system:serviceaccount:p%sm:sa\"", esc);
				snprintf(groups, sizeof(groups), "[\"system:serviceaccounts:p%sm\"]", esc);
			} else {
				snprintf(username, sizeof(username), "\"system:serviceaccount:pam:s%sa\"", esc);
				snprintf(groups, sizeof(groups), "[\"system:serviceaccounts:pam\"]");
			}
			if (alnum || b == '-' || (b == '.' && where == 1))
				want = KT_R_OK;
			else if (b == 0 || b >= 0x80)
				want = KT_R_MALFORMED_REPLY;   /* embedded NUL / invalid UTF-8 */
			else
				want = KT_R_NOT_SERVICEACCOUNT;
			u = user_json(username, "\"" UID "\"", groups);
			expect_reply_free(reply_auth(u, "[\"ours\"]"), want);
			free(u);
		}
	}
}

static void test_a06_identity(void **state)
{
	static const struct { const char *uid, *groups; enum kt_reason want; } cases[] = {
		{ "\"\"", GROUPS_PAM, KT_R_BAD_IDENTITY },
		{ "\" \"", GROUPS_PAM, KT_R_BAD_IDENTITY },
		{ "\"a\\nb\"", GROUPS_PAM, KT_R_BAD_IDENTITY },
		{ "\"\\u00e9\"", GROUPS_PAM, KT_R_BAD_IDENTITY },
		{ "\"" UID "\"", "[]", KT_R_BAD_IDENTITY },
		{ "\"" UID "\"", "[\"system:serviceaccounts\",\"system:authenticated\"]", KT_R_BAD_IDENTITY },
		{ "\"" UID "\"", "[\"system:serviceaccounts:pam2\"]", KT_R_BAD_IDENTITY },
		{ "\"" UID "\"", "[\"system:serviceaccounts:PAM\"]", KT_R_BAD_IDENTITY },
		{ "\"" UID "\"", "[\"system:serviceaccount:pam\"]", KT_R_BAD_IDENTITY },
		{ "\"" UID "\"", "[\"system:serviceaccounts:pam\",\"\\u0007\"]", KT_R_BAD_IDENTITY },
		{ "\"" UID "\"", "[\"system:serviceaccounts:pam\",\"\\u0000\"]", KT_R_MALFORMED_REPLY },
		{ "\"" UID "\"", "\"system:serviceaccounts:pam\"", KT_R_MALFORMED_REPLY },
		{ "\"" UID "\"", "null", KT_R_MALFORMED_REPLY },
		{ "42", GROUPS_PAM, KT_R_MALFORMED_REPLY },
		{ "true", GROUPS_PAM, KT_R_MALFORMED_REPLY },
		{ "\"" UID "\"", "[\"system:serviceaccounts:pam\"]", KT_R_OK },
	};
	char uid128[140], uid129[140];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *u = user_json("\"system:serviceaccount:pam:pam-user\"", cases[i].uid, cases[i].groups);

		expect_reply_free(reply_auth(u, "[\"ours\"]"), cases[i].want);
		free(u);
	}
	/* uid and groups absent altogether */
	expect_reply_free(reply_auth("{\"username\":\"system:serviceaccount:pam:pam-user\",\"groups\":" GROUPS_PAM "}",
	                             "[\"ours\"]"), KT_R_BAD_IDENTITY);
	expect_reply_free(reply_auth("{\"username\":\"system:serviceaccount:pam:pam-user\",\"uid\":\"" UID "\"}",
	                             "[\"ours\"]"), KT_R_BAD_IDENTITY);
	snprintf(uid128, sizeof(uid128), "\"%0128d\"", 0);
	snprintf(uid129, sizeof(uid129), "\"%0129d\"", 0);
	{
		char *u = user_json("\"system:serviceaccount:pam:pam-user\"", uid128, GROUPS_PAM);

		expect_reply_free(reply_auth(u, "[\"ours\"]"), KT_R_OK);
		free(u);
		u = user_json("\"system:serviceaccount:pam:pam-user\"", uid129, GROUPS_PAM);
		expect_reply_free(reply_auth(u, "[\"ours\"]"), KT_R_BAD_IDENTITY);
		free(u);
	}
	/* extra */
	{
		static const struct { const char *extra; enum kt_reason want; } ex[] = {
			{ "{}", KT_R_OK },
			{ "{\"authentication.kubernetes.io/pod-name\":[]}", KT_R_OK },
			{ "{\"authentication.kubernetes.io/pod-name\":[\"p\\n\"]}", KT_R_BAD_IDENTITY },
			{ "{\"authentication.kubernetes.io/pod-name\":[\"\"]}", KT_R_BAD_IDENTITY },
			{ "{\"authentication.kubernetes.io/pod-name\":\"p\"}", KT_R_MALFORMED_REPLY },
			{ "{\"authentication.kubernetes.io/pod-name\":[1]}", KT_R_MALFORMED_REPLY },
			{ "{\"authentication.kubernetes.io/pod-name\":null}", KT_R_MALFORMED_REPLY },
			{ "{\"other\":[{}]}", KT_R_MALFORMED_REPLY },
			{ "[]", KT_R_MALFORMED_REPLY },
			{ "null", KT_R_MALFORMED_REPLY },
		};

		for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
			char *u = xasprintf("{\"username\":\"system:serviceaccount:pam:pam-user\",\"uid\":\"" UID "\","
			                    "\"groups\":" GROUPS_PAM ",\"extra\":%s}", ex[i].extra);

			expect_reply_free(reply_auth(u, "[\"ours\"]"), ex[i].want);
			free(u);
		}
	}
}

static void test_a07_kind(void **state)
{
	char *u = user_json("\"system:serviceaccount:pam:pam-user\"", "\"" UID "\"", GROUPS_PAM);
	static const char *const heads[] = {
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",",
		"{\"kind\":\"Status\",\"apiVersion\":\"authentication.k8s.io/v1\",",
		"{\"kind\":\"TokenReview\",\"apiVersion\":\"v1\",",
		"{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1beta1\",",
		"{\"kind\":\"TokenReview\",",
		"{\"apiVersion\":\"authentication.k8s.io/v1\",",
		"{\"kind\":\"tokenreview\",\"apiVersion\":\"authentication.k8s.io/v1\",",
		"{\"kind\":[\"TokenReview\"],\"apiVersion\":\"authentication.k8s.io/v1\",",
		"{\"kind\":null,\"apiVersion\":\"authentication.k8s.io/v1\",",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++)
		expect_reply_free(xasprintf("%s\"status\":{\"authenticated\":true,\"user\":%s,\"audiences\":[\"ours\"]}}",
		                            heads[i], u), KT_R_MALFORMED_REPLY);
	expect_reply("{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
	             "\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}", KT_R_MALFORMED_REPLY);
	free(u);
}

static void test_a08_framing(void **state)
{
	char *u = user_json("\"system:serviceaccount:pam:pam-user\"", "\"" UID "\"", GROUPS_PAM);
	char *good = reply_auth(u, "[\"ours\"]");
	size_t len = strlen(good);
	char *buf = malloc(2 * len + 16);
	static const char *const tails[] = { "x", "}", "]", ",", "{}", "null", "\n\n0", "\f", "\v", "\x1a" };

	(void)state;
	expect_reply(good, KT_R_OK);
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		char *b = xasprintf("%s%s", good, tails[i]);

		expect_reply_free(b, KT_R_MALFORMED_REPLY);
	}
	/* two documents, and the good one second */
	expect_reply_free(xasprintf("%s%s", good, good), KT_R_MALFORMED_REPLY);
	/* NUL then garbage, NUL in the middle, NUL at the end */
	assert_non_null(buf);
	memcpy(buf, good, len);
	memcpy(buf + len, "\0garbage", 8);
	assert_int_equal(run_case(buf, len + 8, ours, 1, KT_R_MALFORMED_REPLY), KT_R_MALFORMED_REPLY);
	assert_int_equal(run_case(buf, len + 1, ours, 1, KT_R_MALFORMED_REPLY), KT_R_MALFORMED_REPLY);
	buf[len / 2] = '\0';
	assert_int_equal(run_case(buf, len, ours, 1, KT_R_MALFORMED_REPLY), KT_R_MALFORMED_REPLY);
	/* every truncation */
	for (size_t p = 0; p + 2 < len; p++)
		assert_int_equal(run_case(good, p, ours, 1, KT_R_MALFORMED_REPLY), KT_R_MALFORMED_REPLY);
	/* the exact document without its newline is fine */
	assert_int_equal(run_case(good, len - 1, ours, 1, KT_R_OK), KT_R_OK);
	assert_int_equal(run_case(NULL, 0, ours, 1, KT_R_MALFORMED_REPLY), KT_R_MALFORMED_REPLY);
	assert_int_equal(run_case(NULL, 10, ours, 1, KT_R_MALFORMED_REPLY), KT_R_MALFORMED_REPLY);
	free(buf);
	free(good);
	free(u);
}

static void test_a09_nonstrict(void **state)
{
	static const struct { const char *from, *to; } edits[] = {
		{ "\"status\":", "/*c*/\"status\":" }, { "\"status\":", "//c\n\"status\":" },
		{ "\"status\":", "#c\n\"status\":" },
		{ "\"authenticated\":true", "\"authenticated\":True" },
		{ "\"authenticated\":true", "\"authenticated\":tRUE" },
		{ "\"authenticated\":true", "\"authenticated\":true," },
		{ "[\"ours\"]", "[\"ours\",]" }, { "[\"ours\"]", "['ours']" },
		{ "\"kind\":\"TokenReview\"", "'kind':'TokenReview'" },
		{ "\"kind\":\"TokenReview\"", "\"kind\":'TokenReview'" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":NaN" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":-NaN" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":Infinity" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":-Infinity" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":1." },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":.1" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":1e" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":00" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":-" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":0x1" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":NULL" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":None" },
		{ "\"creationTimestamp\":null", "creationTimestamp:null" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":\"a\tb\"" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":\"\\a\"" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":\"\\u12\"" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\" null" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\"::null" },
		{ "\"creationTimestamp\":null", "\"creationTimestamp\":null,," },
	};
	char *u = user_json("\"system:serviceaccount:pam:pam-user\"", "\"" UID "\"", GROUPS_PAM);
	char *good = reply_auth(u, "[\"ours\"]");

	(void)state;
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		const char *at = strstr(good, edits[i].from);
		char *b;

		assert_non_null(at);
		b = xasprintf("%.*s%s%s", (int)(at - good), good, edits[i].to, at + strlen(edits[i].from));
		expect_reply_free(b, KT_R_MALFORMED_REPLY);
	}
	free(good);
	free(u);
}

static char *nested(size_t depth)
{
	char *u = user_json("\"system:serviceaccount:pam:pam-user\"", "\"" UID "\"", GROUPS_PAM);
	char *inner = malloc(2 * depth + 1), *b;

	assert_non_null(inner);
	memset(inner, '[', depth);
	memset(inner + depth, ']', depth);
	inner[2 * depth] = '\0';
	b = xasprintf("{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{\"x\":%s},"
	              "\"status\":{\"authenticated\":true,\"user\":%s,\"audiences\":[\"ours\"]}}", inner, u);
	free(inner);
	free(u);
	return b;
}

static void test_a10_nesting_and_size(void **state)
{
	static const size_t depths[] = { 17, 33, 1000, 30000 };
	double worst = 0;

	(void)state;
	/* depth 16 in total (root, metadata, 14 arrays) passes; one more does not */
	expect_reply_free(nested(14), KT_R_OK);
	expect_reply_free(nested(15), KT_R_MALFORMED_REPLY);
	for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		char *b = nested(depths[i]);
		double t0 = now_ms(), dt;

		expect_reply(b, KT_R_MALFORMED_REPLY);
		dt = now_ms() - t0;
		if (dt > worst)
			worst = dt;
		free(b);
	}
	/* 100,000 deep: over the size cap; also as a bare unclosed prefix within the cap */
	{
		size_t n = 100000;
		char *b = malloc(n + 1);
		double t0;

		assert_non_null(b);
		memset(b, '[', n);
		b[n] = '\0';
		t0 = now_ms();
		assert_int_equal(run_case(b, n, ours, 1, KT_R_REPLY_TOO_LARGE), KT_R_REPLY_TOO_LARGE);
		assert_int_equal(run_case(b, KT_REPLY_MAX, ours, 1, KT_R_MALFORMED_REPLY), KT_R_MALFORMED_REPLY);
		memset(b, '{', n);
		assert_int_equal(run_case(b, KT_REPLY_MAX, ours, 1, KT_R_MALFORMED_REPLY), KT_R_MALFORMED_REPLY);
		if (now_ms() - t0 > worst)
			worst = now_ms() - t0;
		free(b);
	}
	/* groups: 10^6 (over the cap), as many short ones as fit (over KT_MAX_GROUPS), 256, 257 */
	{
		static const size_t counts[] = { 1000000, 9000, 257, 256 };

		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			size_t n = counts[c], cap = 64 + n * 8, o = 0;
			char *g = malloc(cap), *u, *b;
			enum kt_reason want = n > KT_MAX_GROUPS ? KT_R_BAD_IDENTITY : KT_R_OK;
			double t0;

			assert_non_null(g);
			o += (size_t)snprintf(g + o, cap - o, "[\"system:serviceaccounts:pam\"");
			for (size_t i = 1; i < n; i++)
				o += (size_t)snprintf(g + o, cap - o, ",\"%zx\"", i % 4096);
			snprintf(g + o, cap - o, "]");
			u = user_json("\"system:serviceaccount:pam:pam-user\"", "\"" UID "\"", g);
			b = reply_auth(u, "[\"ours\"]");
			if (strlen(b) > KT_REPLY_MAX)
				want = KT_R_REPLY_TOO_LARGE;
			t0 = now_ms();
			expect_reply(b, want);
			if (now_ms() - t0 > worst)
				worst = now_ms() - t0;
			free(b);
			free(u);
			free(g);
		}
	}
	printf("# A10: slowest hostile nesting/size case %.2f ms\n", worst);
	if (timing_enabled())
		assert_true(worst < 50.0);
}

static void test_a12_utf8(void **state)
{
	static const char *const bad[] = { "\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	                                   "\xe2\x82", "\x80", "\xf8\x88\x80\x80\x80" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *name = xasprintf("\"system:serviceaccount:pam:pam-user%s\"", bad[i]);
		char *grp = xasprintf("[\"system:serviceaccounts:pam\",\"g%s\"]", bad[i]);
		char *u = user_json(name, "\"" UID "\"", GROUPS_PAM);

		expect_reply_free(reply_auth(u, "[\"ours\"]"), KT_R_MALFORMED_REPLY);
		free(u);
		u = user_json("\"system:serviceaccount:pam:pam-user\"", "\"" UID "\"", grp);
		expect_reply_free(reply_auth(u, "[\"ours\"]"), KT_R_MALFORMED_REPLY);
		free(u);
		free(grp);
		free(name);
	}
}

static void test_a13_duplicates(void **state)
{
	char *u = user_json("\"system:serviceaccount:pam:pam-user\"", "\"" UID "\"", GROUPS_PAM);
	char *st;

	(void)state;
	/* last-wins would accept this one: we refuse any duplicate key */
	st = xasprintf("{\"authenticated\":false,\"authenticated\":true,\"user\":%s,\"audiences\":[\"ours\"]}", u);
	expect_reply_free(reply_with_status(st), KT_R_MALFORMED_REPLY);
	free(st);
	st = xasprintf("{\"authenticated\":true,\"user\":%s,\"audiences\":[\"ours\"],\"authenticated\":false}", u);
	expect_reply_free(reply_with_status(st), KT_R_MALFORMED_REPLY);
	free(st);
	st = xasprintf("{\"authenticated\":true,\"user\":{},\"user\":%s,\"audiences\":[\"ours\"]}", u);
	expect_reply_free(reply_with_status(st), KT_R_MALFORMED_REPLY);
	free(st);
	st = xasprintf("{\"authenticated\":true,\"user\":%s,\"audiences\":[\"ours\"]},\"status\":{}", u);
	expect_reply_free(reply_with_status(st), KT_R_MALFORMED_REPLY);
	free(st);
	st = xasprintf("{\"authenticated\":true,\"user\":%s,\"audiences\":[\"ours\"],\"\\u0061udiences\":[]}", u);
	expect_reply_free(reply_with_status(st), KT_R_MALFORMED_REPLY);
	free(st);
	/* a duplicate in a part we otherwise ignore: still refused */
	st = xasprintf("{\"authenticated\":true,\"user\":%s,\"audiences\":[\"ours\"]}", u);
	{
		char *b = xasprintf("{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\","
		                    "\"metadata\":{\"a\":{\"b\":1,\"b\":2}},\"status\":%s}", st);

		expect_reply_free(b, KT_R_MALFORMED_REPLY);
	}
	free(st);
	/* same key name in different objects is not a duplicate */
	st = xasprintf("{\"authenticated\":true,\"user\":%s,\"audiences\":[\"ours\"]}", u);
	{
		char *b = xasprintf("{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\","
		                    "\"metadata\":{\"status\":{\"user\":1},\"kind\":[{\"kind\":1},{\"kind\":2}]},\"status\":%s}", st);

		expect_reply_free(b, KT_R_OK);
	}
	free(st);
	free(u);
}

static void expect_error_text(const char *error_json, const char *want_prefix)
{
	char *st = xasprintf("{\"user\":{},\"error\":%s}", error_json);
	char *b = reply_with_status(st);
	char err[KT_SERVER_ERROR_MAX + 1];
	struct kt_identity id;
	enum kt_reason r;

	r = kt_review_parse_reply(b, strlen(b), ours, 1, &id, err);
	hostile_tried++;
	if (r == KT_R_OK)
		false_accepts++;
	assert_int_equal(r, KT_R_UNAUTHENTICATED);
	check_server_error(err);
	assert_true(strchr(err, '\n') == NULL && strchr(err, '\r') == NULL && strchr(err, '\x1b') == NULL);
	if (want_prefix != NULL)
		assert_memory_equal(err, want_prefix, strlen(want_prefix));
	free(b);
	free(st);
}

static void test_l03_server_error(void **state)
{
	size_t n = 60000;
	char *big = malloc(n + 3);

	(void)state;
	expect_error_text("\"line1\\nline2\\rFAKE: allow user=root\"", "line1\\x0aline2\\x0dFAKE: allow user=root");
	expect_error_text("\"\\u001b[31mred\\u001b[0m\\u0007\\u007f\"", "\\x1b[31mred\\x1b[0m\\x07\\x7f");
	expect_error_text("\"%n%s%s%x%p\"", "%n%s%s%x%p");
	expect_error_text("\"\\u00e4 \\u202e\"", "\\xc3\\xa4 \\xe2\\x80\\xae");
	expect_error_text("\"\\\"quoted\\\" \\\\ back\"", "\\\"quoted\\\" \\\\ back");
	assert_non_null(big);
	big[0] = '"';
	memset(big + 1, 'E', n);
	big[n + 1] = '"';
	big[n + 2] = '\0';
	expect_error_text(big, "EEEE");
	for (size_t i = 0; i < n / 3; i += 2)   /* escaped newlines: "\n\n\n..." */
		memcpy(big + 1 + i, "\\n", 2);
	big[n / 3 + 1] = '"';
	big[n / 3 + 2] = '\0';
	expect_error_text(big, "\\x0a\\x0a");
	free(big);
	/* 100 KB error: over the body cap */
	{
		size_t m = 100 * 1024;
		char *e = malloc(m + 3), *st, *b;

		assert_non_null(e);
		e[0] = '"';
		for (size_t i = 0; i < m; i += 2)
			memcpy(e + 1 + i, "%n", 2);
		e[m + 1] = '"';
		e[m + 2] = '\0';
		st = xasprintf("{\"user\":{},\"error\":%s}", e);
		b = reply_with_status(st);
		expect_reply(b, KT_R_REPLY_TOO_LARGE);
		free(b);
		free(st);
		free(e);
	}
	/* an error text on a successful review is ignored; a wrong-typed one is not */
	expect_reply_free(reply_with_status("{\"user\":{},\"error\":7}"), KT_R_MALFORMED_REPLY);
	expect_reply_free(reply_with_status("{\"user\":{},\"error\":\"a\\u0000b\"}"), KT_R_MALFORMED_REPLY);
}

static int print_totals(void **state)
{
	(void)state;
	printf("# test_review: %lu hostile/bad replies tried, %lu false accepts; %lu good replies accepted; "
	       "%lu mutants tried (%lu accepted, all invariant-clean)\n",
	       hostile_tried, false_accepts, good_tried, mutants_tried, mutants_accepted);
	return false_accepts == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_exact),
		cmocka_unit_test(test_request_injection),
		cmocka_unit_test(test_request_errors),
		cmocka_unit_test(test_a01_identity),
		cmocka_unit_test(test_a02_unauthenticated),
		cmocka_unit_test(test_a03_coercion),
		cmocka_unit_test(test_a04_audiences),
		cmocka_unit_test(test_a05_usernames),
		cmocka_unit_test(test_a05_every_byte),
		cmocka_unit_test(test_a06_identity),
		cmocka_unit_test(test_a07_kind),
		cmocka_unit_test(test_a08_framing),
		cmocka_unit_test(test_a09_nonstrict),
		cmocka_unit_test(test_a10_nesting_and_size),
		cmocka_unit_test(test_a12_utf8),
		cmocka_unit_test(test_a13_duplicates),
		cmocka_unit_test(test_l03_server_error),
		cmocka_unit_test(test_corpus),
	};

	return cmocka_run_group_tests_name("review", tests, NULL, print_totals);
}
