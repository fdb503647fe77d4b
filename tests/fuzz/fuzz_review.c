/*
 * The JSON lexer (json_strict.c) and the TokenReview reply validation (review.c
 * kt_review_parse_reply, docs/design.md §6.2), then the helper's re-built reply
 * (review_helper.c forward_status_only, §2.1), on arbitrary reply bodies. Invariants:
 *   - a body the validation accepts passed the lexer, and yields a complete identity:
 *     username exactly system:serviceaccount:NS:NAME with NS/NAME the split of it, a DNS
 *     label NS, a printable uid, 1..256 printable groups among them system:serviceaccounts:NS,
 *     printable optional extras;
 *   - anything else leaves the identity empty; an "unauthenticated" detail is printable and
 *     at most KT_SERVER_ERROR_MAX characters (plus the "..." of a cut);
 *   - the lexer is monotonic in its depth limit and counts the same members either way;
 *   - what the helper forwards (a TokenReview re-built from the status) gets the same
 *     verdict, the same identity and the same detail from the module as the original.
 */
#define main review_helper_main
#include "review_helper.c"
#undef main

#include "fuzz.h"
#include "json_strict.h"

static char aud_pam[] = "pam-test", aud_ssh[] = "ssh://bastion-1";
static char *audiences[] = { aud_pam, aud_ssh };

static int same_string(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int printable_token(const char *s, size_t max)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > max || !fuzz_printable(s, n))
		return 0;
	return strchr(s, ' ') == NULL;
}

static void check_complete_identity(const struct kt_identity *id)
{
	static const char prefix[] = "system:serviceaccount:", group_prefix[] = "system:serviceaccounts:";
	char want[600];
	int has_ns_group = 0;

	FUZZ_ASSERT(id->username != NULL && id->sa_namespace != NULL && id->sa_name != NULL);
	FUZZ_ASSERT(strlen(id->sa_namespace) >= 1 && strlen(id->sa_namespace) <= 63);
	FUZZ_ASSERT(strlen(id->sa_name) >= 1 && strlen(id->sa_name) <= 253);
	for (const char *p = id->sa_namespace; *p != '\0'; p++)
		FUZZ_ASSERT((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-');
	FUZZ_ASSERT(strchr(id->sa_name, ':') == NULL);
	snprintf(want, sizeof(want), "%s%s:%s", prefix, id->sa_namespace, id->sa_name);
	FUZZ_ASSERT(strcmp(want, id->username) == 0);
	FUZZ_ASSERT(printable_token(id->uid, 128));
	FUZZ_ASSERT(id->n_groups >= 1 && id->n_groups <= KT_MAX_GROUPS && id->groups != NULL);
	snprintf(want, sizeof(want), "%s%s", group_prefix, id->sa_namespace);
	for (size_t i = 0; i < id->n_groups; i++) {
		size_t n = strlen(id->groups[i]);

		FUZZ_ASSERT(n >= 1 && n <= 256 && fuzz_printable(id->groups[i], n));
		has_ns_group |= strcmp(id->groups[i], want) == 0;
	}
	FUZZ_ASSERT(has_ns_group);
	FUZZ_ASSERT(id->credential_id == NULL || printable_token(id->credential_id, 256));
	FUZZ_ASSERT(id->pod_name == NULL || printable_token(id->pod_name, 256));
	FUZZ_ASSERT(id->pod_uid == NULL || printable_token(id->pod_uid, 256));
	FUZZ_ASSERT(id->node_name == NULL || printable_token(id->node_name, 256));
}

static void check_empty_identity(const struct kt_identity *id)
{
	FUZZ_ASSERT(id->username == NULL && id->sa_namespace == NULL && id->sa_name == NULL &&
	            id->uid == NULL && id->groups == NULL && id->n_groups == 0 &&
	            id->credential_id == NULL && id->pod_name == NULL && id->pod_uid == NULL &&
	            id->node_name == NULL);
}

static void check_same_identity(const struct kt_identity *a, const struct kt_identity *b)
{
	FUZZ_ASSERT(same_string(a->username, b->username) && same_string(a->uid, b->uid) &&
	            same_string(a->sa_namespace, b->sa_namespace) &&
	            same_string(a->sa_name, b->sa_name) && a->n_groups == b->n_groups &&
	            same_string(a->credential_id, b->credential_id) &&
	            same_string(a->pod_name, b->pod_name) && same_string(a->pod_uid, b->pod_uid) &&
	            same_string(a->node_name, b->node_name));
	for (size_t i = 0; i < a->n_groups; i++)
		FUZZ_ASSERT(strcmp(a->groups[i], b->groups[i]) == 0);
}

static int only_members(json_object *obj, const char *const *keys, size_t n_keys)
{
	if (!json_object_is_type(obj, json_type_object))
		return 0;
	json_object_object_foreach(obj, key, value) {
		size_t i = 0;

		(void)value;
		while (i < n_keys && strcmp(key, keys[i]) != 0)
			i++;
		if (i == n_keys)
			return 0;
	}
	return 1;
}

static void check_lexer(const uint8_t *data, size_t size)
{
	size_t m8 = 0, m16 = 0, m17 = 0;
	bool at8 = kt_json_lex(data, size, 8, &m8);
	bool at16 = kt_json_lex(data, size, 16, &m16);
	bool at17 = kt_json_lex(data, size, 17, &m17);

	FUZZ_ASSERT(!at8 || at16);
	FUZZ_ASSERT(!at16 || at17);
	FUZZ_ASSERT(!at8 || m8 == m16);
	FUZZ_ASSERT(!at16 || m16 == m17);
}

/* The forwarded body holds apiVersion, kind and status{authenticated,error,audiences,user}:
 * nothing else of the reply, spec.token least of all. (A string value may well contain
 * "spec": only the members count.) */
static void check_only_status(const char *body, size_t len)
{
	static const char *const top[] = { "apiVersion", "kind", "status" };
	static const char *const status_keys[] = { "authenticated", "error", "audiences", "user" };
	json_object *root = NULL, *status;

	FUZZ_ASSERT(kt_json_parse_object(body, len, KT_REPLY_MAX_DEPTH, &root) == KT_R_OK);
	FUZZ_ASSERT(only_members(root, top, 3));
	status = kt_json_member(root, "status");
	FUZZ_ASSERT(status != NULL && only_members(status, status_keys, 4));
	json_object_put(root);
}

/* The helper's forwarded body, judged by the module: same verdict, identity and detail. */
static void check_forwarded(const uint8_t *data, size_t size, enum kt_reason verdict,
                            const struct kt_identity *id, const char *detail)
{
	struct kt_config cfg = { .audiences = audiences, .n_audiences = 2 };
	struct kt_helper_result res = { .reason = KT_R_OK };
	struct kt_identity again;
	char detail_again[KT_SERVER_ERROR_MAX + 1];
	enum kt_reason r;

	FUZZ_ASSERT(kt_secret_dup(&res.body, data, size) == 0);
	forward_status_only(&cfg, &res);
	if (verdict != KT_R_OK && verdict != KT_R_UNAUTHENTICATED && verdict != KT_R_AUDIENCE &&
	    verdict != KT_R_NOT_SERVICEACCOUNT && verdict != KT_R_BAD_IDENTITY) {
		/* forwarded as its reason alone, without a body */
		FUZZ_ASSERT(res.reason == verdict && res.body.p == NULL);
		return;
	}
	FUZZ_ASSERT(res.reason == KT_R_OK && res.body.p != NULL);
	check_only_status(res.body.p, res.body.len);
	r = kt_review_parse_reply(res.body.p, res.body.len, audiences, 2, &again, detail_again);
	FUZZ_ASSERT(r == verdict);
	if (r == KT_R_OK)
		check_same_identity(id, &again);
	if (r == KT_R_UNAUTHENTICATED)
		FUZZ_ASSERT(strcmp(detail, detail_again) == 0);
	kt_identity_free(&again);
	kt_helper_result_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kt_identity id;
	char detail[KT_SERVER_ERROR_MAX + 1];
	size_t members = 0;
	enum kt_reason r;

	check_lexer(data, size);
	r = kt_review_parse_reply((const char *)data, size, audiences, 2, &id, detail);
	FUZZ_ASSERT(r == KT_R_OK || r == KT_R_UNAUTHENTICATED || r == KT_R_AUDIENCE ||
	            r == KT_R_NOT_SERVICEACCOUNT || r == KT_R_BAD_IDENTITY ||
	            r == KT_R_MALFORMED_REPLY || r == KT_R_REPLY_TOO_LARGE);
	FUZZ_ASSERT(strlen(detail) <= KT_SERVER_ERROR_MAX && fuzz_printable(detail, strlen(detail)));
	if (r != KT_R_UNAUTHENTICATED)
		FUZZ_ASSERT(detail[0] == '\0');
	if (r == KT_R_OK) {
		FUZZ_ASSERT(kt_json_lex(data, size, KT_REPLY_MAX_DEPTH, &members));
		check_complete_identity(&id);
	} else {
		check_empty_identity(&id);
	}
	check_forwarded(data, size, r, &id, detail);
	kt_identity_free(&id);
	return 0;
}
