/*
 * The configuration parser (config.c kt_config_parse_buffer, rules.c kt_rule_parse;
 * docs/design.md §3) and the rule decision (kt_rules_decide, §3.2). Input: the file's
 * text; after a NUL byte, an identity and a local user, one per line: NS, NAME, USER,
 * then groups. Invariants:
 *   - a refused file gives KT_R_CONFIG and a printable, non-empty message naming it;
 *   - an accepted file satisfies every documented bound (servers, audiences, timeouts,
 *     TTLs, sizes, paths, exactly one kind of reviewer credential, a printable prompt)
 *     and parses again to the same rules;
 *   - the decision is ok, deny_rule or not_mapped; it does not depend on the order of the
 *     rules; ok names a map rule and a valid local user, deny_rule a deny rule.
 */
#include <string.h>

#include "config.h"
#include "config_values.h"
#include "fuzz.h"
#include "rules.h"

#define MAX_GROUPS_IN 8

static void check_bounds(const struct kt_config *c)
{
	FUZZ_ASSERT(c->n_servers >= 1 && c->n_servers <= 8);
	for (size_t i = 0; i < c->n_servers; i++)
		FUZZ_ASSERT(kt_check_server(c->servers[i]) == NULL);
	FUZZ_ASSERT(c->n_audiences >= 1 && c->n_audiences <= 16);
	for (size_t i = 0; i < c->n_audiences; i++)
		FUZZ_ASSERT(c->audiences[i][0] != '\0' &&
		            fuzz_printable(c->audiences[i], strlen(c->audiences[i])) &&
		            strpbrk(c->audiences[i], " \"\\") == NULL);
	FUZZ_ASSERT(c->ca_file != NULL && kt_check_path(c->ca_file) == NULL);
	FUZZ_ASSERT((c->reviewer_token_file != NULL) + (c->client_cert_file != NULL) == 1);
	FUZZ_ASSERT((c->client_cert_file != NULL) == (c->client_key_file != NULL));
	FUZZ_ASSERT(c->reviewer_token_file == NULL || kt_check_path(c->reviewer_token_file) == NULL);
	FUZZ_ASSERT(c->client_cert_file == NULL || kt_check_path(c->client_cert_file) == NULL);
	FUZZ_ASSERT(c->client_key_file == NULL || kt_check_path(c->client_key_file) == NULL);
	FUZZ_ASSERT(c->timeout >= 1 && c->timeout <= 60);
	FUZZ_ASSERT(c->connect_timeout >= 1 && c->connect_timeout <= 30 &&
	            c->connect_timeout <= c->timeout);
	FUZZ_ASSERT(c->cache_ttl <= 3600 && c->negative_cache_ttl <= 300);
	FUZZ_ASSERT(c->max_token_size >= 64 && c->max_token_size <= 1048576);
	FUZZ_ASSERT(c->cache_dir != NULL && kt_check_path(c->cache_dir) == NULL);
	FUZZ_ASSERT(c->prompt != NULL && c->prompt[0] != '\0' && kt_printable_utf8(c->prompt));
	for (size_t i = 0; i < c->n_rules; i++) {
		const struct kt_rule *r = &c->rules[i];

		FUZZ_ASSERT(r->line >= 1);
		FUZZ_ASSERT(i == 0 || r->line > c->rules[i - 1].line);
		FUZZ_ASSERT((r->action == KT_RULE_MAP) == (r->user_template != NULL));
		FUZZ_ASSERT(r->subject == KT_SUBJECT_GROUP ? r->group_glob != NULL
		            : r->namespace_glob != NULL && r->name_glob != NULL);
	}
}

static void check_same_rules(const struct kt_config *a, const struct kt_config *b)
{
	FUZZ_ASSERT(a->n_rules == b->n_rules);
	for (size_t i = 0; i < a->n_rules; i++)
		FUZZ_ASSERT(a->rules[i].line == b->rules[i].line &&
		            a->rules[i].action == b->rules[i].action &&
		            a->rules[i].subject == b->rules[i].subject);
}

/* The rules in reverse order: the decision must not change (docs/design.md §3.2). */
static void check_decision(const struct kt_config *c, const struct kt_identity *id,
                           const char *user)
{
	struct kt_rule *reversed = NULL;
	unsigned line = 0, line_rev = 0;
	enum kt_reason r = kt_rules_decide(c->rules, c->n_rules, id, user, &line), r_rev;

	FUZZ_ASSERT(r == KT_R_OK || r == KT_R_DENY_RULE || r == KT_R_NOT_MAPPED);
	if (c->n_rules > 0) {
		reversed = malloc(c->n_rules * sizeof(*reversed));
		FUZZ_ASSERT(reversed != NULL);
		for (size_t i = 0; i < c->n_rules; i++)
			reversed[i] = c->rules[c->n_rules - 1 - i];
	}
	r_rev = kt_rules_decide(reversed, c->n_rules, id, user, &line_rev);
	free(reversed);
	FUZZ_ASSERT(r == r_rev && line == line_rev);
	if (r == KT_R_NOT_MAPPED) {
		FUZZ_ASSERT(line == 0);
		return;
	}
	FUZZ_ASSERT(r != KT_R_OK || kt_valid_local_name(user));
	for (size_t i = 0; i < c->n_rules; i++)
		if (c->rules[i].line == line) {
			FUZZ_ASSERT(c->rules[i].action == (r == KT_R_OK ? KT_RULE_MAP : KT_RULE_DENY));
			return;
		}
	FUZZ_ASSERT(!"the deciding line is no rule's");
}

/* Fills id and *user from "NS\nNAME\nUSER\nGROUP..." (defaults for what is missing). */
static void take_identity(char *tail, struct kt_identity *id, char **groups, const char **user)
{
	static char username[600];
	char *field[3 + MAX_GROUPS_IN] = { "pam", "pam-user", "alice" };
	size_t n = 0;

	for (char *p = tail; p != NULL && n < 3 + MAX_GROUPS_IN; n++) {
		char *nl = strchr(p, '\n');

		field[n] = p;
		if (nl != NULL)
			*nl = '\0';
		p = nl != NULL ? nl + 1 : NULL;
	}
	snprintf(username, sizeof(username), "system:serviceaccount:%.250s:%.250s", field[0], field[1]);
	memset(id, 0, sizeof(*id));
	id->username = username;
	id->sa_namespace = field[0];
	id->sa_name = field[1];
	id->uid = field[1];
	*user = field[2];
	for (size_t i = 3; i < n; i++)
		groups[id->n_groups++] = field[i];
	id->groups = id->n_groups > 0 ? groups : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t text_len = nul != NULL ? (size_t)(nul - data) : size;
	char *tail = nul != NULL ? fuzz_cstr(nul + 1, size - text_len - 1) : NULL;
	struct kt_config cfg, again;
	struct kt_identity id;
	char *groups[MAX_GROUPS_IN];
	const char *user;
	char err[512] = "";
	enum kt_reason r;

	kt_config_init(&cfg);
	r = kt_config_parse_buffer(&cfg, "fuzz.conf", (const char *)data, text_len, err, sizeof(err));
	FUZZ_ASSERT(r == KT_R_OK || r == KT_R_CONFIG);
	if (r != KT_R_OK) {
		FUZZ_ASSERT(strncmp(err, "fuzz.conf", 9) == 0 && fuzz_printable(err, strlen(err)));
		goto out;
	}
	check_bounds(&cfg);
	kt_config_init(&again);
	FUZZ_ASSERT(kt_config_parse_buffer(&again, "fuzz.conf", (const char *)data, text_len, err,
	                                   sizeof(err)) == KT_R_OK);
	check_same_rules(&cfg, &again);
	kt_config_free(&again);
	take_identity(tail, &id, groups, &user);
	check_decision(&cfg, &id, user);
out:
	kt_config_free(&cfg);
	free(tail);
	return 0;
}
