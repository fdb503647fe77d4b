/*
 * Mapping rules (docs/design.md §3): syntax of `map`/`deny` lines and the decision.
 *
 *	map  serviceaccount:NS-GLOB/NAME-GLOB  TEMPLATE
 *	map  group:GROUP-GLOB                  TEMPLATE
 *	deny serviceaccount:NS-GLOB/NAME-GLOB
 *	deny group:GROUP-GLOB
 *
 * Globs know only '*' and '?'. '[', ']' and '\\' are refused at parse time, so our
 * small matcher below is exactly fnmatch(glob, s, 0), minus locale and allocation
 * (fnmatch may fail with -1, which a deny rule could not afford).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"
#include "secure.h"

#define MAX_GLOB      256
#define MAX_TEMPLATE  256
#define MAX_RENDERED  64    /* longer than any valid local name (33) */
#define ESC_LEN       160

static const char PH_NAMESPACE[] = "{namespace}";
static const char PH_NAME[] = "{name}";

struct word {
	const char *s;
	size_t len;
};

static bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}

/* Splits on spaces/tabs; returns the number of words, even beyond max. */
static size_t split(const char *text, struct word *w, size_t max)
{
	size_t n = 0;

	for (;;) {
		size_t len;

		while (is_ws(*text))
			text++;
		if (*text == '\0')
			return n;
		len = strcspn(text, " \t");
		if (n < max) {
			w[n].s = text;
			w[n].len = len;
		}
		n++;
		text += len;
	}
}

static void quote(const char *s, size_t len, char out[ESC_LEN])
{
	kt_escape(s, len, out, ESC_LEN);
}

static bool lower_digit(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool ns_glob_char(char c)
{
	return lower_digit(c) || c == '-' || c == '*' || c == '?';
}

static bool name_glob_char(char c)
{
	return ns_glob_char(c) || c == '.';
}

static bool group_glob_char(char c)
{
	return c > 0x20 && c < 0x7f && c != '[' && c != ']' && c != '\\';
}

static bool check_glob(const char *s, size_t len, bool (*ok)(char))
{
	if (len == 0 || len > MAX_GLOB)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!ok(s[i]))
			return false;
	return true;
}

/* '*' matches any run (also '/'), '?' one character; iterative, no recursion. */
static bool glob_match(const char *pat, const char *s)
{
	const char *star = NULL, *resume = NULL;

	while (*s != '\0') {
		if (*pat == '*') {
			star = pat++;
			resume = s;
		} else if (*pat != '\0' && (*pat == '?' || *pat == *s)) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++resume;
		} else {
			return false;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

int kt_valid_local_name(const char *name)
{
	size_t n;

	if (name == NULL)
		return 0;
	n = strlen(name);
	if (n > 0 && name[n - 1] == '$')
		n--;
	if (n == 0 || n > 32)
		return 0;
	if (!((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!lower_digit(name[i]) && name[i] != '_' && name[i] != '.' && name[i] != '-')
			return 0;
	return 1;
}

static bool starts_with(const char *s, size_t len, const char *prefix, size_t plen)
{
	return len >= plen && memcmp(s, prefix, plen) == 0;
}

/*
 * A literal account name, or literal parts around {namespace}/{name}. The literal
 * parts are checked here so that a template which could never render a valid name
 * is a config error, not a rule that silently never matches.
 */
static enum kt_reason check_template(const char *act, const struct word *w,
				     char *err, size_t errlen)
{
	char q[ESC_LEN];
	bool placeholder = false;
	size_t i = 0;

	quote(w->s, w->len, q);
	if (w->len > MAX_TEMPLATE) {
		snprintf(err, errlen, "%s: template \"%s\" is longer than %d characters",
			 act, q, MAX_TEMPLATE);
		return KT_R_CONFIG;
	}
	while (i < w->len) {
		const char *t = w->s + i;
		size_t rest = w->len - i;
		char c = *t;

		if (starts_with(t, rest, PH_NAMESPACE, sizeof(PH_NAMESPACE) - 1)) {
			i += sizeof(PH_NAMESPACE) - 1;
			placeholder = true;
			continue;
		}
		if (starts_with(t, rest, PH_NAME, sizeof(PH_NAME) - 1)) {
			i += sizeof(PH_NAME) - 1;
			placeholder = true;
			continue;
		}
		if (c == '{' || c == '}') {
			snprintf(err, errlen, "%s: template \"%s\" has an unknown placeholder or "
				 "unbalanced brace (only {namespace} and {name} are known)", act, q);
			return KT_R_CONFIG;
		}
		if (i == 0 && !((c >= 'a' && c <= 'z') || c == '_')) {
			snprintf(err, errlen, "%s: template \"%s\" must start with a-z, '_' or a "
				 "placeholder", act, q);
			return KT_R_CONFIG;
		}
		if (!lower_digit(c) && c != '_' && c != '.' && c != '-' &&
		    !(c == '$' && i + 1 == w->len)) {
			char qc[8];

			kt_escape(t, 1, qc, sizeof(qc));   /* the byte may be anything */
			snprintf(err, errlen, "%s: template \"%s\" contains '%s', which is not "
				 "allowed in an account name", act, q, qc);
			return KT_R_CONFIG;
		}
		i++;
	}
	if (!placeholder) {
		char literal[MAX_TEMPLATE + 1];

		memcpy(literal, w->s, w->len);
		literal[w->len] = '\0';
		if (!kt_valid_local_name(literal)) {
			snprintf(err, errlen, "%s: template \"%s\" is not a valid account name",
				 act, q);
			return KT_R_CONFIG;
		}
	}
	return KT_R_OK;
}

static enum kt_reason parse_subject(struct kt_rule *rule, const char *act,
				    const struct word *w, char *err, size_t errlen)
{
	static const char sa[] = "serviceaccount:", group[] = "group:";
	char q[ESC_LEN];

	quote(w->s, w->len, q);
	if (starts_with(w->s, w->len, sa, sizeof(sa) - 1)) {
		const char *ns = w->s + sizeof(sa) - 1;
		size_t rest = w->len - (sizeof(sa) - 1);
		const char *slash = memchr(ns, '/', rest);
		size_t ns_len, name_len;

		if (slash == NULL) {
			snprintf(err, errlen, "%s: \"%s\" must be "
				 "serviceaccount:NAMESPACE-GLOB/NAME-GLOB", act, q);
			return KT_R_CONFIG;
		}
		ns_len = (size_t)(slash - ns);
		name_len = rest - ns_len - 1;
		if (!check_glob(ns, ns_len, ns_glob_char)) {
			snprintf(err, errlen, "%s: \"%s\": the namespace pattern must be 1 to %d "
				 "of a-z, 0-9, '-', '*', '?'", act, q, MAX_GLOB);
			return KT_R_CONFIG;
		}
		if (!check_glob(slash + 1, name_len, name_glob_char)) {
			snprintf(err, errlen, "%s: \"%s\": the name pattern must be 1 to %d "
				 "of a-z, 0-9, '-', '.', '*', '?'", act, q, MAX_GLOB);
			return KT_R_CONFIG;
		}
		rule->subject = KT_SUBJECT_SERVICEACCOUNT;
		rule->namespace_glob = strndup(ns, ns_len);
		rule->name_glob = strndup(slash + 1, name_len);
		if (rule->namespace_glob == NULL || rule->name_glob == NULL)
			return KT_R_NOMEM;
		return KT_R_OK;
	}
	if (starts_with(w->s, w->len, group, sizeof(group) - 1)) {
		const char *g = w->s + sizeof(group) - 1;
		size_t g_len = w->len - (sizeof(group) - 1);

		if (!check_glob(g, g_len, group_glob_char)) {
			snprintf(err, errlen, "%s: \"%s\": the group pattern must be 1 to %d "
				 "printable characters without '[', ']' or '\\'", act, q, MAX_GLOB);
			return KT_R_CONFIG;
		}
		rule->subject = KT_SUBJECT_GROUP;
		rule->group_glob = strndup(g, g_len);
		return rule->group_glob != NULL ? KT_R_OK : KT_R_NOMEM;
	}
	snprintf(err, errlen, "%s: unknown subject \"%s\" (expected serviceaccount:NS/NAME "
		 "or group:GROUP)", act, q);
	return KT_R_CONFIG;
}

enum kt_reason kt_rule_parse(struct kt_rule *rule, enum kt_rule_action action,
			     const char *text, char *err, size_t errlen)
{
	const char *act = action == KT_RULE_MAP ? "map" : "deny";
	size_t want = action == KT_RULE_MAP ? 2 : 1;
	struct word w[2];
	size_t n;
	enum kt_reason r;
	char scratch[1];

	/* callers may pass no buffer; snprintf below always gets a valid one */
	if (err == NULL || errlen == 0) {
		err = scratch;
		errlen = sizeof(scratch);
	}
	err[0] = '\0';
	memset(rule, 0, sizeof(*rule));
	rule->action = action;
	n = split(text != NULL ? text : "", w, 2);
	if (n != want) {
		if (action == KT_RULE_MAP)
			snprintf(err, errlen, "map: expected \"map SUBJECT LOCAL-USER\", "
				 "found %zu word%s after map", n, n == 1 ? "" : "s");
		else
			snprintf(err, errlen, "deny: expected \"deny SUBJECT\", found %zu "
				 "word%s after deny", n, n == 1 ? "" : "s");
		return KT_R_CONFIG;
	}
	r = parse_subject(rule, act, &w[0], err, errlen);
	if (r == KT_R_OK && action == KT_RULE_MAP) {
		r = check_template(act, &w[1], err, errlen);
		if (r == KT_R_OK && (rule->user_template = strndup(w[1].s, w[1].len)) == NULL)
			r = KT_R_NOMEM;
	}
	if (r == KT_R_NOMEM)
		snprintf(err, errlen, "out of memory");
	if (r != KT_R_OK)
		kt_rule_free(rule);
	return r;
}

void kt_rule_free(struct kt_rule *rule)
{
	if (rule == NULL)
		return;
	free(rule->namespace_glob);
	free(rule->name_glob);
	free(rule->group_glob);
	free(rule->user_template);
	memset(rule, 0, sizeof(*rule));
}

static bool rule_matches(const struct kt_rule *rule, const struct kt_identity *id)
{
	if (rule->subject == KT_SUBJECT_SERVICEACCOUNT)
		return rule->namespace_glob != NULL && rule->name_glob != NULL &&
		       glob_match(rule->namespace_glob, id->sa_namespace) &&
		       glob_match(rule->name_glob, id->sa_name);
	if (rule->group_glob == NULL)
		return false;
	for (size_t i = 0; i < id->n_groups; i++)
		if (id->groups[i] != NULL && glob_match(rule->group_glob, id->groups[i]))
			return true;
	return false;
}

/* Substitutes {namespace}/{name}; false when the result does not fit. */
static bool render(const char *t, const struct kt_identity *id, char *out, size_t outlen)
{
	size_t o = 0;

	while (*t != '\0') {
		const char *piece = t;
		size_t len = 1;

		if (strncmp(t, PH_NAMESPACE, sizeof(PH_NAMESPACE) - 1) == 0) {
			piece = id->sa_namespace;
			len = strlen(piece);
			t += sizeof(PH_NAMESPACE) - 1;
		} else if (strncmp(t, PH_NAME, sizeof(PH_NAME) - 1) == 0) {
			piece = id->sa_name;
			len = strlen(piece);
			t += sizeof(PH_NAME) - 1;
		} else {
			t++;
		}
		if (len >= outlen - o)
			return false;
		memcpy(out + o, piece, len);
		o += len;
	}
	out[o] = '\0';
	return true;
}

static bool renders_user(const struct kt_rule *rule, const struct kt_identity *id,
			 const char *pam_user)
{
	char user[MAX_RENDERED];

	return rule->user_template != NULL &&
	       render(rule->user_template, id, user, sizeof(user)) &&
	       kt_valid_local_name(user) && strcmp(user, pam_user) == 0;
}

enum kt_reason kt_rules_decide(const struct kt_rule *rules, size_t n_rules,
			       const struct kt_identity *id, const char *pam_user,
			       unsigned *matched_line)
{
	const struct kt_rule *deny = NULL, *map = NULL;

	if (matched_line != NULL)
		*matched_line = 0;
	/* without the whole identity no deny rule can be trusted to have been checked */
	if (id == NULL || id->sa_namespace == NULL || id->sa_name == NULL ||
	    (id->n_groups > 0 && id->groups == NULL) || pam_user == NULL)
		return KT_R_NOT_MAPPED;
	for (size_t i = 0; i < n_rules; i++) {
		const struct kt_rule *r = &rules[i];

		if (!rule_matches(r, id))
			continue;
		if (r->action == KT_RULE_DENY) {
			if (deny == NULL || r->line < deny->line)
				deny = r;
		} else if (renders_user(r, id, pam_user)) {
			if (map == NULL || r->line < map->line)
				map = r;
		}
	}
	if (deny != NULL) {
		if (matched_line != NULL)
			*matched_line = deny->line;
		return KT_R_DENY_RULE;
	}
	if (map != NULL) {
		if (matched_line != NULL)
			*matched_line = map->line;
		return KT_R_OK;
	}
	return KT_R_NOT_MAPPED;
}
