/* cmocka tests for rules.c: rule syntax, globs, templates and the decision. */
#include <fnmatch.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "identity.h"
#include "rules.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- kt_valid_local_name ---- */

static void test_valid_local_name(void **state)
{
	static const struct {
		const char *name;
		int ok;
	} c[] = {
		{ "root", 1 }, { "a", 1 }, { "_", 1 }, { "_svc", 1 }, { "deploy", 1 },
		{ "a-b.c_d9", 1 }, { "machine$", 1 }, { "ops-deployer", 1 },
		{ "abcdefghijklmnopqrstuvwxyz012345", 1 },    /* 32 */
		{ "abcdefghijklmnopqrstuvwxyz012345$", 1 },   /* 32 + $ */
		{ "abcdefghijklmnopqrstuvwxyz0123456", 0 },   /* 33 */
		{ "", 0 }, { "$", 0 }, { "a$$", 0 }, { "a$b", 0 }, { "A", 0 }, { "Deploy", 0 },
		{ "1abc", 0 }, { "-a", 0 }, { ".a", 0 }, { ".", 0 }, { "..", 0 },
		{ "a b", 0 }, { "a/b", 0 }, { "a:b", 0 }, { "a@b", 0 }, { "a\n", 0 },
		{ "\xc3\xbc" "ber", 0 }, { "a*", 0 }, { "{name}", 0 },
	};

	(void)state;
	for (size_t i = 0; i < N(c); i++) {
		if (kt_valid_local_name(c[i].name) != c[i].ok)
			print_error("\"%s\": expected %d\n", c[i].name, c[i].ok);
		assert_int_equal(kt_valid_local_name(c[i].name), c[i].ok);
	}
	assert_int_equal(kt_valid_local_name(NULL), 0);
}

/* ---- kt_rule_parse ---- */

static void test_parse_good(void **state)
{
	struct kt_rule r;
	char err[256];

	(void)state;
	assert_int_equal(kt_rule_parse(&r, KT_RULE_MAP, "serviceaccount:ops/deployer deploy",
				       err, sizeof(err)), KT_R_OK);
	assert_int_equal(r.action, KT_RULE_MAP);
	assert_int_equal(r.subject, KT_SUBJECT_SERVICEACCOUNT);
	assert_string_equal(r.namespace_glob, "ops");
	assert_string_equal(r.name_glob, "deployer");
	assert_null(r.group_glob);
	assert_string_equal(r.user_template, "deploy");
	assert_string_equal(err, "");
	kt_rule_free(&r);
	assert_null(r.namespace_glob);

	assert_int_equal(kt_rule_parse(&r, KT_RULE_MAP,
				       "  group:system:serviceaccounts:on-call \t {namespace}-{name}  ",
				       err, sizeof(err)), KT_R_OK);
	assert_int_equal(r.subject, KT_SUBJECT_GROUP);
	assert_string_equal(r.group_glob, "system:serviceaccounts:on-call");
	assert_null(r.namespace_glob);
	assert_string_equal(r.user_template, "{namespace}-{name}");
	kt_rule_free(&r);

	assert_int_equal(kt_rule_parse(&r, KT_RULE_DENY, "serviceaccount:kube-*/*", err,
				       sizeof(err)), KT_R_OK);
	assert_int_equal(r.action, KT_RULE_DENY);
	assert_string_equal(r.namespace_glob, "kube-*");
	assert_string_equal(r.name_glob, "*");
	assert_null(r.user_template);
	kt_rule_free(&r);

	assert_int_equal(kt_rule_parse(&r, KT_RULE_DENY, "group:*", NULL, 0), KT_R_OK);
	assert_string_equal(r.group_glob, "*");
	kt_rule_free(&r);
	kt_rule_free(NULL);
}

struct parse_case {
	enum kt_rule_action action;
	const char *text;
	const char *msg;   /* NULL: accepted */
};

static const struct parse_case parse_cases[] = {
	/* accepted shapes */
	{ KT_RULE_MAP, "serviceaccount:team-?/app.v1-* {name}", NULL },
	{ KT_RULE_MAP, "serviceaccount:*/* {namespace}", NULL },
	{ KT_RULE_MAP, "serviceaccount:ns/n _{name}$", NULL },
	{ KT_RULE_MAP, "serviceaccount:ns/n sa-{namespace}.{name}", NULL },
	{ KT_RULE_MAP, "serviceaccount:ns/n {name}{name}", NULL },
	{ KT_RULE_MAP, "group:a:b/c.d@e*? u", NULL },
	{ KT_RULE_MAP, "serviceaccount:ns/n machine$", NULL },
	/* word counts */
	{ KT_RULE_MAP, "", "map: expected \"map SUBJECT LOCAL-USER\", found 0 words after map" },
	{ KT_RULE_MAP, "serviceaccount:a/b", "map: expected \"map SUBJECT LOCAL-USER\", found 1 word after map" },
	{ KT_RULE_MAP, "serviceaccount:a/b u extra", "map: expected \"map SUBJECT LOCAL-USER\", found 3 words after map" },
	{ KT_RULE_DENY, "", "deny: expected \"deny SUBJECT\", found 0 words after deny" },
	{ KT_RULE_DENY, "serviceaccount:a/b u", "deny: expected \"deny SUBJECT\", found 2 words after deny" },
	/* subjects */
	{ KT_RULE_MAP, "sa:a/b u", "map: unknown subject \"sa:a/b\" (expected serviceaccount:NS/NAME or group:GROUP)" },
	{ KT_RULE_MAP, "ServiceAccount:a/b u", "map: unknown subject \"ServiceAccount:a/b\" (expected serviceaccount:NS/NAME or group:GROUP)" },
	{ KT_RULE_DENY, "system:serviceaccount:a:b", "deny: unknown subject \"system:serviceaccount:a:b\" (expected serviceaccount:NS/NAME or group:GROUP)" },
	{ KT_RULE_DENY, "serviceaccount:a", "deny: \"serviceaccount:a\" must be serviceaccount:NAMESPACE-GLOB/NAME-GLOB" },
	{ KT_RULE_DENY, "serviceaccount:a:b", "deny: \"serviceaccount:a:b\" must be serviceaccount:NAMESPACE-GLOB/NAME-GLOB" },
	{ KT_RULE_DENY, "serviceaccount:/b", "deny: \"serviceaccount:/b\": the namespace pattern must be 1 to 256 of a-z, 0-9, '-', '*', '?'" },
	{ KT_RULE_DENY, "serviceaccount:a/", "deny: \"serviceaccount:a/\": the name pattern must be 1 to 256 of a-z, 0-9, '-', '.', '*', '?'" },
	{ KT_RULE_DENY, "serviceaccount:a/b/c", "deny: \"serviceaccount:a/b/c\": the name pattern must be 1 to 256 of a-z, 0-9, '-', '.', '*', '?'" },
	{ KT_RULE_DENY, "serviceaccount:a.b/c", "deny: \"serviceaccount:a.b/c\": the namespace pattern must be 1 to 256 of a-z, 0-9, '-', '*', '?'" },
	{ KT_RULE_DENY, "serviceaccount:[a]/b", "deny: \"serviceaccount:[a]/b\": the namespace pattern must be 1 to 256 of a-z, 0-9, '-', '*', '?'" },
	{ KT_RULE_DENY, "serviceaccount:a/b\\*", "deny: \"serviceaccount:a/b\\\\*\": the name pattern must be 1 to 256 of a-z, 0-9, '-', '.', '*', '?'" },
	{ KT_RULE_DENY, "serviceaccount:a/B", "deny: \"serviceaccount:a/B\": the name pattern must be 1 to 256 of a-z, 0-9, '-', '.', '*', '?'" },
	{ KT_RULE_DENY, "serviceaccount:a_b/c", "deny: \"serviceaccount:a_b/c\": the namespace pattern must be 1 to 256 of a-z, 0-9, '-', '*', '?'" },
	{ KT_RULE_DENY, "group:", "deny: \"group:\": the group pattern must be 1 to 256 printable characters without '[', ']' or '\\'" },
	{ KT_RULE_DENY, "group:a[bc]", "deny: \"group:a[bc]\": the group pattern must be 1 to 256 printable characters without '[', ']' or '\\'" },
	{ KT_RULE_DENY, "group:a[b", "deny: \"group:a[b\": the group pattern must be 1 to 256 printable characters without '[', ']' or '\\'" },
	{ KT_RULE_DENY, "group:a]b", "deny: \"group:a]b\": the group pattern must be 1 to 256 printable characters without '[', ']' or '\\'" },
	{ KT_RULE_DENY, "serviceaccount:a/b[", "deny: \"serviceaccount:a/b[\": the name pattern must be 1 to 256 of a-z, 0-9, '-', '.', '*', '?'" },
	{ KT_RULE_DENY, "group:a\\*", "deny: \"group:a\\\\*\": the group pattern must be 1 to 256 printable characters without '[', ']' or '\\'" },
	{ KT_RULE_DENY, "group:\xc3\xa9", "deny: \"group:\\xc3\\xa9\": the group pattern must be 1 to 256 printable characters without '[', ']' or '\\'" },
	/* templates */
	{ KT_RULE_MAP, "group:g {user}", "map: template \"{user}\" has an unknown placeholder or unbalanced brace (only {namespace} and {name} are known)" },
	{ KT_RULE_MAP, "group:g {name", "map: template \"{name\" has an unknown placeholder or unbalanced brace (only {namespace} and {name} are known)" },
	{ KT_RULE_MAP, "group:g name}", "map: template \"name}\" has an unknown placeholder or unbalanced brace (only {namespace} and {name} are known)" },
	{ KT_RULE_MAP, "group:g {{name}}", "map: template \"{{name}}\" has an unknown placeholder or unbalanced brace (only {namespace} and {name} are known)" },
	{ KT_RULE_MAP, "group:g {}", "map: template \"{}\" has an unknown placeholder or unbalanced brace (only {namespace} and {name} are known)" },
	{ KT_RULE_MAP, "group:g {Name}", "map: template \"{Name}\" has an unknown placeholder or unbalanced brace (only {namespace} and {name} are known)" },
	{ KT_RULE_MAP, "group:g Deploy", "map: template \"Deploy\" must start with a-z, '_' or a placeholder" },
	{ KT_RULE_MAP, "group:g 1{name}", "map: template \"1{name}\" must start with a-z, '_' or a placeholder" },
	{ KT_RULE_MAP, "group:g -{name}", "map: template \"-{name}\" must start with a-z, '_' or a placeholder" },
	{ KT_RULE_MAP, "group:g u/{name}", "map: template \"u/{name}\" contains '/', which is not allowed in an account name" },
	{ KT_RULE_MAP, "group:g {name}:x", "map: template \"{name}:x\" contains ':', which is not allowed in an account name" },
	{ KT_RULE_MAP, "group:g a$b", "map: template \"a$b\" contains '$', which is not allowed in an account name" },
	{ KT_RULE_MAP, "group:g {name}*", "map: template \"{name}*\" contains '*', which is not allowed in an account name" },
	{ KT_RULE_MAP, "group:g abcdefghijklmnopqrstuvwxyz0123456", "map: template \"abcdefghijklmnopqrstuvwxyz0123456\" is not a valid account name" },
	{ KT_RULE_MAP, "group:g _$", NULL },
};

static void test_parse_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct kt_rule r;
		char err[512];
		enum kt_reason got = kt_rule_parse(&r, c->action, c->text, err, sizeof(err));

		if (got != (c->msg == NULL ? KT_R_OK : KT_R_CONFIG) ||
		    (c->msg != NULL && strcmp(err, c->msg) != 0))
			print_error("case %zu \"%s\": got %d \"%s\"\n", i, c->text, got, err);
		if (c->msg == NULL) {
			assert_int_equal(got, KT_R_OK);
		} else {
			assert_int_equal(got, KT_R_CONFIG);
			assert_string_equal(err, c->msg);
			/* a refused rule owns nothing */
			assert_null(r.namespace_glob);
			assert_null(r.name_glob);
			assert_null(r.group_glob);
			assert_null(r.user_template);
		}
		kt_rule_free(&r);
	}
}

static void test_parse_limits(void **state)
{
	char text[1024], err[512];
	struct kt_rule r;

	(void)state;
	/* glob of 256 accepted, 257 refused */
	snprintf(text, sizeof(text), "group:%0256d", 0);
	assert_int_equal(kt_rule_parse(&r, KT_RULE_DENY, text, err, sizeof(err)), KT_R_OK);
	kt_rule_free(&r);
	snprintf(text, sizeof(text), "group:%0257d", 0);
	assert_int_equal(kt_rule_parse(&r, KT_RULE_DENY, text, err, sizeof(err)), KT_R_CONFIG);
	kt_rule_free(&r);
	/* template of 257 refused; escaped value in the message is capped */
	snprintf(text, sizeof(text), "group:g {name}%0251d", 0);
	assert_int_equal(kt_rule_parse(&r, KT_RULE_MAP, text, err, sizeof(err)), KT_R_CONFIG);
	assert_non_null(strstr(err, "...\" is longer than 256 characters"));
	kt_rule_free(&r);
	/* a tiny error buffer is cut and terminated */
	{
		char small[8];

		assert_int_equal(kt_rule_parse(&r, KT_RULE_MAP, "x", small, sizeof(small)),
				 KT_R_CONFIG);
		assert_string_equal(small, "map: ex");
	}
	assert_int_equal(kt_rule_parse(&r, KT_RULE_MAP, NULL, err, sizeof(err)), KT_R_CONFIG);
}

/* ---- decisions ---- */

static char *groups_default[] = {
	"system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated",
};

static struct kt_identity make_id(char *ns, char *name, char **groups, size_t n_groups)
{
	struct kt_identity id;

	memset(&id, 0, sizeof(id));
	id.sa_namespace = ns;
	id.sa_name = name;
	id.groups = groups;
	id.n_groups = n_groups;
	return id;
}

/* Parses `lines` ("map ..." / "deny ..." separated by '\n') into rules numbered from 1. */
struct ruleset {
	struct kt_rule r[16];
	size_t n;
};

static void build(struct ruleset *rs, const char *lines)
{
	char copy[2048], err[512];
	char *save = NULL;
	unsigned line = 0;

	memset(rs, 0, sizeof(*rs));
	snprintf(copy, sizeof(copy), "%s", lines);
	for (char *l = strtok_r(copy, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		bool map = strncmp(l, "map ", 4) == 0;

		line++;
		assert_true(map || strncmp(l, "deny ", 5) == 0);
		assert_true(rs->n < N(rs->r));
		if (kt_rule_parse(&rs->r[rs->n], map ? KT_RULE_MAP : KT_RULE_DENY,
				  l + (map ? 4 : 5), err, sizeof(err)) != KT_R_OK)
			fail_msg("rule \"%s\": %s", l, err);
		rs->r[rs->n++].line = line;
	}
}

static void drop(struct ruleset *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		kt_rule_free(&rs->r[i]);
}

struct decide_case {
	const char *rules;
	char *ns, *name;
	const char *user;
	enum kt_reason want;
	unsigned line;
};

static const struct decide_case decide_cases[] = {
	/* literal mapping */
	{ "map serviceaccount:ops/deployer deploy", "ops", "deployer", "deploy", KT_R_OK, 1 },
	{ "map serviceaccount:ops/deployer deploy", "ops", "deployer", "root", KT_R_NOT_MAPPED, 0 },
	{ "map serviceaccount:ops/deployer deploy", "ops", "other", "deploy", KT_R_NOT_MAPPED, 0 },
	{ "map serviceaccount:ops/deployer deploy", "ops2", "deployer", "deploy", KT_R_NOT_MAPPED, 0 },
	/* no rules at all */
	{ "", "ops", "deployer", "deploy", KT_R_NOT_MAPPED, 0 },
	/* globs and templates */
	{ "map serviceaccount:team-*/* {name}", "team-a", "alice", "alice", KT_R_OK, 1 },
	{ "map serviceaccount:team-*/* {name}", "team-a", "alice", "bob", KT_R_NOT_MAPPED, 0 },
	{ "map serviceaccount:team-*/* {name}", "team-", "alice", "alice", KT_R_OK, 1 },
	{ "map serviceaccount:team-*/* {name}", "teams", "alice", "alice", KT_R_NOT_MAPPED, 0 },
	{ "map serviceaccount:team-?/* {name}", "team-b", "x", "x", KT_R_OK, 1 },
	{ "map serviceaccount:team-?/* {name}", "team-bb", "x", "x", KT_R_NOT_MAPPED, 0 },
	{ "map serviceaccount:*/* {namespace}-{name}", "ci", "runner", "ci-runner", KT_R_OK, 1 },
	{ "map serviceaccount:*/* sa_{namespace}_{name}$", "ci", "runner", "sa_ci_runner$", KT_R_OK, 1 },
	{ "map serviceaccount:*/app.* {name}", "x", "app.v1", "app.v1", KT_R_OK, 1 },
	/* rendering into an invalid name never matches, even if PAM_USER equals it */
	{ "map serviceaccount:*/* {name}", "ns", "1abc", "1abc", KT_R_NOT_MAPPED, 0 },
	{ "map serviceaccount:*/* {namespace}-{name}",
	  "a-very-long-namespace-name", "and-a-long-name", "a-very-long-namespace-name-and-a-long-name",
	  KT_R_NOT_MAPPED, 0 },
	{ "map serviceaccount:*/* {name}{name}{name}",
	  "ns", "abcdefghijklmnopqrstuvwxy", "abcdefghijklmnopqrstuvwxyabcdefghijklmnopqrstuvwxyabcdefghijklmnopqrstuvwxy",
	  KT_R_NOT_MAPPED, 0 },
	/* a map rule matching but rendering another user does not decide; another may */
	{ "map serviceaccount:*/* {name}\nmap serviceaccount:ops/* deploy", "ops", "bob", "deploy", KT_R_OK, 2 },
	{ "map serviceaccount:*/* {name}\nmap serviceaccount:ops/* deploy", "ops", "bob", "bob", KT_R_OK, 1 },
	{ "map serviceaccount:*/* {name}\nmap serviceaccount:ops/* deploy", "ops", "bob", "alice", KT_R_NOT_MAPPED, 0 },
	/* the lowest matching map line is reported */
	{ "map serviceaccount:ops/* deploy\nmap serviceaccount:*/bob deploy", "ops", "bob", "deploy", KT_R_OK, 1 },
	/* deny wins regardless of order */
	{ "map serviceaccount:*/* {name}\ndeny serviceaccount:kube-system/*", "kube-system", "admin", "admin", KT_R_DENY_RULE, 2 },
	{ "deny serviceaccount:kube-system/*\nmap serviceaccount:*/* {name}", "kube-system", "admin", "admin", KT_R_DENY_RULE, 1 },
	{ "map serviceaccount:*/* {name}\ndeny serviceaccount:kube-system/*", "default", "admin", "admin", KT_R_OK, 1 },
	/* deny also when no map would have matched */
	{ "deny serviceaccount:*/*", "a", "b", "b", KT_R_DENY_RULE, 1 },
	/* the first deny in file order is reported */
	{ "map serviceaccount:*/* {name}\ndeny serviceaccount:x/*\ndeny serviceaccount:*/y\ndeny group:*", "x", "y", "y", KT_R_DENY_RULE, 2 },
	{ "map serviceaccount:*/* {name}\ndeny serviceaccount:q/*\ndeny serviceaccount:*/y\ndeny group:*", "x", "y", "y", KT_R_DENY_RULE, 3 },
	/* group rules: any identity group */
	{ "map group:system:serviceaccounts:team-a oncall", "team-a", "x", "oncall", KT_R_OK, 1 },
	{ "map group:system:serviceaccounts:team-b oncall", "team-a", "x", "oncall", KT_R_NOT_MAPPED, 0 },
	{ "map group:system:authenticated {namespace}", "team-a", "x", "team-a", KT_R_OK, 1 },
	{ "map group:*:team-? {name}", "team-a", "carol", "carol", KT_R_OK, 1 },
	{ "map serviceaccount:*/* {name}\ndeny group:system:serviceaccounts:team-a", "team-a", "carol", "carol", KT_R_DENY_RULE, 2 },
	{ "deny group:system:serviceaccounts:team-a\nmap serviceaccount:*/* {name}", "team-a", "carol", "carol", KT_R_DENY_RULE, 1 },
	{ "map serviceaccount:*/* {name}\ndeny group:system:masters", "team-a", "carol", "carol", KT_R_OK, 1 },
	/* PAM_USER is compared exactly */
	{ "map serviceaccount:*/* deploy", "a", "b", "Deploy", KT_R_NOT_MAPPED, 0 },
	{ "map serviceaccount:*/* deploy", "a", "b", "deploy ", KT_R_NOT_MAPPED, 0 },
	{ "map serviceaccount:*/* deploy", "a", "b", "", KT_R_NOT_MAPPED, 0 },
};

static void test_decide_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(decide_cases); i++) {
		const struct decide_case *c = &decide_cases[i];
		struct kt_identity id = make_id(c->ns, c->name, groups_default, N(groups_default));
		struct ruleset rs;
		unsigned line = 99;
		enum kt_reason got;

		build(&rs, c->rules);
		got = kt_rules_decide(rs.r, rs.n, &id, c->user, &line);
		if (got != c->want || line != c->line)
			print_error("case %zu (%s/%s as %s): got %s line %u\n", i, c->ns, c->name,
				    c->user, kt_reason_name(got), line);
		assert_int_equal(got, c->want);
		assert_int_equal(line, c->line);
		/* every permutation of rule order gives the same verdict (two rules: swap) */
		if (rs.n == 2) {
			struct kt_rule tmp = rs.r[0];

			rs.r[0] = rs.r[1];
			rs.r[1] = tmp;
			assert_int_equal(kt_rules_decide(rs.r, rs.n, &id, c->user, &line), c->want);
			assert_int_equal(line, c->line);
		}
		drop(&rs);
	}
}

static void test_decide_incomplete_inputs(void **state)
{
	struct ruleset rs;
	struct kt_identity id = make_id("ns", "n", groups_default, N(groups_default));
	unsigned line = 7;

	(void)state;
	build(&rs, "map serviceaccount:*/* deploy\nmap group:* deploy");
	assert_int_equal(kt_rules_decide(rs.r, rs.n, &id, "deploy", NULL), KT_R_OK);
	assert_int_equal(kt_rules_decide(rs.r, rs.n, NULL, "deploy", &line), KT_R_NOT_MAPPED);
	assert_int_equal(line, 0);
	assert_int_equal(kt_rules_decide(rs.r, rs.n, &id, NULL, &line), KT_R_NOT_MAPPED);
	id.sa_namespace = NULL;
	assert_int_equal(kt_rules_decide(rs.r, rs.n, &id, "deploy", &line), KT_R_NOT_MAPPED);
	id = make_id("ns", NULL, groups_default, N(groups_default));
	assert_int_equal(kt_rules_decide(rs.r, rs.n, &id, "deploy", &line), KT_R_NOT_MAPPED);
	/* n_groups without an array is an inconsistent identity */
	id = make_id("ns", "n", NULL, 2);
	assert_int_equal(kt_rules_decide(rs.r, rs.n, &id, "deploy", &line), KT_R_NOT_MAPPED);
	/* no groups: group rules do not match, SA rules still do */
	id = make_id("ns", "n", NULL, 0);
	assert_int_equal(kt_rules_decide(rs.r, rs.n, &id, "deploy", &line), KT_R_OK);
	assert_int_equal(line, 1);
	assert_int_equal(kt_rules_decide(rs.r + 1, 1, &id, "deploy", &line), KT_R_NOT_MAPPED);
	/* zero rules, NULL array */
	assert_int_equal(kt_rules_decide(NULL, 0, &id, "deploy", &line), KT_R_NOT_MAPPED);
	drop(&rs);
}

/* Our matcher must agree with fnmatch(pattern, s, 0) on the allowed charset. */
static void test_glob_agrees_with_fnmatch(void **state)
{
	static const char *const pats[] = {
		"*", "?", "a*", "*a", "a*b", "a?c", "*a*", "**", "*?", "?*?", "a**b", "*ab*ab",
		"system:serviceaccounts:*", "*:team-?", "a*b*c", "", "abc", "*/*", "a/*",
	};
	static const char *const strs[] = {
		"", "a", "b", "ab", "abc", "abbc", "aXbYc", "acb", "abab", "xabyab", "aab",
		"system:serviceaccounts:x", "system:serviceaccounts:", "g:team-a", "g:team-ab",
		"a/b", "a/b/c", "/",
	};
	char *groups[1];

	(void)state;
	for (size_t p = 0; p < N(pats); p++) {
		struct ruleset rs;
		char line[300];

		if (pats[p][0] == '\0')
			continue;   /* an empty glob is refused at parse time */
		snprintf(line, sizeof(line), "map group:%s u", pats[p]);
		build(&rs, line);
		for (size_t s = 0; s < N(strs); s++) {
			struct kt_identity id;
			bool want = fnmatch(pats[p], strs[s], 0) == 0;
			bool got;

			groups[0] = (char *)strs[s];
			id = make_id("ns", "n", groups, 1);
			got = kt_rules_decide(rs.r, rs.n, &id, "u", NULL) == KT_R_OK;
			if (got != want)
				print_error("glob \"%s\" vs \"%s\": got %d, fnmatch %d\n",
					    pats[p], strs[s], got, want);
			assert_int_equal(got, want);
		}
		drop(&rs);
	}
}

/* Pathological glob: the matcher must stay fast (no exponential backtracking). */
static void test_glob_backtracking(void **state)
{
	char pat[300], s[300];
	struct ruleset rs;
	char *groups[1] = { s };
	struct kt_identity id;
	size_t o = 0;

	(void)state;
	o += (size_t)snprintf(pat + o, sizeof(pat) - o, "map group:");
	for (int i = 0; i < 40; i++)
		o += (size_t)snprintf(pat + o, sizeof(pat) - o, "*a");
	snprintf(pat + o, sizeof(pat) - o, "b u");
	memset(s, 'a', 250);
	s[250] = '\0';
	build(&rs, pat);
	id = make_id("ns", "n", groups, 1);
	assert_int_equal(kt_rules_decide(rs.r, rs.n, &id, "u", NULL), KT_R_NOT_MAPPED);
	s[249] = 'b';
	assert_int_equal(kt_rules_decide(rs.r, rs.n, &id, "u", NULL), KT_R_OK);
	drop(&rs);
}

/* End to end through the config parser: the docs/design.md §3 example. */
static void test_product_example(void **state)
{
	static const char text[] =
		"server = https://10.0.0.10:6443\n"
		"server = https://10.0.0.11:6443\n"
		"ca_file = /etc/pam_k8stoken/ca.crt\n"
		"reviewer_token_file = /etc/pam_k8stoken/reviewer.token\n"
		"audience = ssh://bastion-1\n"
		"map  serviceaccount:ops/deployer   deploy\n"
		"map  serviceaccount:team-*/*        {name}\n"
		"map  group:system:serviceaccounts:oncall  oncall\n"
		"deny serviceaccount:kube-system/*\n";
	static const struct {
		char *ns, *name, *group;
		const char *user;
		enum kt_reason want;
		unsigned line;
	} c[] = {
		{ "ops", "deployer", "system:serviceaccounts:ops", "deploy", KT_R_OK, 6 },
		{ "ops", "deployer", "system:serviceaccounts:ops", "deployer", KT_R_NOT_MAPPED, 0 },
		{ "team-x", "alice", "system:serviceaccounts:team-x", "alice", KT_R_OK, 7 },
		{ "team-x", "alice", "system:serviceaccounts:team-x", "deploy", KT_R_NOT_MAPPED, 0 },
		{ "oncall", "pager", "system:serviceaccounts:oncall", "oncall", KT_R_OK, 8 },
		{ "kube-system", "x", "system:serviceaccounts:oncall", "oncall", KT_R_DENY_RULE, 9 },
		{ "default", "default", "system:serviceaccounts:default", "root", KT_R_NOT_MAPPED, 0 },
	};
	struct kt_config cfg;
	char err[256];

	(void)state;
	kt_config_init(&cfg);
	assert_int_equal(kt_config_parse_buffer(&cfg, "ex.conf", text, strlen(text), err,
						sizeof(err)), KT_R_OK);
	assert_int_equal(cfg.n_rules, 4);
	for (size_t i = 0; i < N(c); i++) {
		char *groups[2] = { "system:serviceaccounts", c[i].group };
		struct kt_identity id = make_id(c[i].ns, c[i].name, groups, 2);
		unsigned line = 99;

		assert_int_equal(kt_rules_decide(cfg.rules, cfg.n_rules, &id, c[i].user, &line),
				 c[i].want);
		assert_int_equal(line, c[i].line);
	}
	kt_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_local_name),
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_cases),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_decide_cases),
		cmocka_unit_test(test_decide_incomplete_inputs),
		cmocka_unit_test(test_glob_agrees_with_fnmatch),
		cmocka_unit_test(test_glob_backtracking),
		cmocka_unit_test(test_product_example),
	};

	return cmocka_run_group_tests_name("rules", tests, NULL, NULL);
}
