/*
 * Configuration file and module arguments (docs/design.md §3).
 *
 * File grammar, one item per line:
 *	key = value
 *	map  SUBJECT TEMPLATE      (rule syntax is owned by rules.c)
 *	deny SUBJECT
 *	# comment
 * Comments are whole lines only: '#' is ordinary text inside a value (a prompt may
 * contain it), so "key = value # note" keeps "value # note" and fails validation
 * where '#' is not allowed. Spaces and tabs around the line and around '=' are
 * trimmed; any other control byte is an error (a CRLF file is refused rather than
 * half understood). Only prompt may be double-quoted, to keep leading or trailing
 * spaces; nothing is unescaped inside the quotes.
 *
 * Everything fails closed: unknown keys, bad values and repeated single-valued keys
 * are errors, reported once as "NAME:LINE: key: what is wrong".
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "config.h"
#include "config_values.h"
#include "private_file.h"
#include "rules.h"
#include "secure.h"
#include "trusted_owner.h"

#define MAX_LINE      4096
#define MAX_SERVERS   8
#define MAX_AUDIENCES 16
#define ESC_LEN       160   /* a quoted value inside a message */
#define NAME_ESC_LEN  256   /* the file name at the start of a message */

enum opt_type {
	OPT_SERVER, OPT_AUDIENCE, OPT_PATH, OPT_PROMPT, OPT_BOOL,
	OPT_UINT,   /* unsigned */
	OPT_ULONG,  /* unsigned long */
	OPT_SIZE,   /* size_t */
	OPT_ACCESS, /* an access_* template (access.c) */
	OPT_HOST,   /* host_name */
	OPT_ISSUER, OPT_JWKS_URI, OPT_LOCAL_VERIFY,
};

/* One row per key: type, storage and range (pam-krb5 style). Sorted by key. */
struct opt {
	const char *key;
	enum opt_type type;
	size_t offset;
	unsigned long long min, max;
};

#define OFF(field) offsetof(struct kt_config, field)

static const struct opt opts[] = {
	{ "access_group",        OPT_ACCESS,   OFF(access_group),        0, 0 },
	{ "access_name",         OPT_ACCESS,   OFF(access_name),         0, 0 },
	{ "access_namespace",    OPT_ACCESS,   OFF(access_namespace),    0, 0 },
	{ "access_resource",     OPT_ACCESS,   OFF(access_resource),     0, 0 },
	{ "access_review",       OPT_BOOL,     OFF(access_review),       0, 0 },
	{ "access_subresource",  OPT_ACCESS,   OFF(access_subresource),  0, 0 },
	{ "access_verb",         OPT_ACCESS,   OFF(access_verb),         0, 0 },
	{ "allow_legacy_tokens", OPT_BOOL,     OFF(allow_legacy_tokens), 0, 0 },
	{ "allow_root",          OPT_BOOL,     OFF(allow_root),          0, 0 },
	{ "audience",            OPT_AUDIENCE, OFF(audiences),           0, 0 },
	{ "ca_file",             OPT_PATH,     OFF(ca_file),             0, 0 },
	{ "cache_dir",           OPT_PATH,     OFF(cache_dir),           0, 0 },
	{ "cache_ttl",           OPT_UINT,     OFF(cache_ttl),           0, 3600 },
	{ "client_cert_file",    OPT_PATH,     OFF(client_cert_file),    0, 0 },
	{ "client_key_file",     OPT_PATH,     OFF(client_key_file),     0, 0 },
	{ "connect_timeout",     OPT_UINT,     OFF(connect_timeout),     1, 30 },
	{ "host_name",           OPT_HOST,     OFF(host_name),           0, 0 },
	{ "issuer",              OPT_ISSUER,   OFF(issuers),             0, 0 },
	{ "jwks_file",           OPT_PATH,     OFF(jwks_file),           0, 0 },
	{ "jwks_refresh",        OPT_UINT,     OFF(jwks_refresh),        60, 86400 },
	{ "jwks_uri",            OPT_JWKS_URI, OFF(jwks_uri),            0, 0 },
	{ "local_verify",        OPT_LOCAL_VERIFY, OFF(local_verify),    0, 0 },
	{ "max_token_size",      OPT_SIZE,     OFF(max_token_size),      64, 1048576 },
	{ "min_uid",             OPT_ULONG,    OFF(min_uid),             0, 4294967294ULL },
	{ "negative_cache_ttl",  OPT_UINT,     OFF(negative_cache_ttl),  0, 300 },
	{ "offline_grace",       OPT_UINT,     OFF(offline_grace),       0, 86400 },
	{ "prompt",              OPT_PROMPT,   OFF(prompt),              0, 0 },
	{ "reviewer_token_file", OPT_PATH,     OFF(reviewer_token_file), 0, 0 },
	{ "server",              OPT_SERVER,   OFF(servers),             0, 0 },
	{ "timeout",             OPT_UINT,     OFF(timeout),             1, 60 },
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

struct parser {
	struct kt_config *cfg;
	const char *name;
	unsigned line;
	unsigned seen[N_OPTS];  /* line of the first occurrence, 0 = absent */
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 5, 0)))
static void vput_err(char *err, size_t errlen, const char *name, unsigned line,
		     const char *fmt, va_list ap)
{
	char ename[NAME_ESC_LEN];
	int n = 0;

	if (err == NULL || errlen == 0)
		return;
	err[0] = '\0';
	if (name != NULL) {
		kt_escape(name, strlen(name), ename, sizeof(ename));
		if (line > 0)
			n = snprintf(err, errlen, "%s:%u: ", ename, line);
		else
			n = snprintf(err, errlen, "%s: ", ename);
		if (n < 0 || (size_t)n >= errlen)
			return;
	}
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

__attribute__((format(printf, 3, 4)))
static enum kt_reason fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vput_err(err, errlen, NULL, 0, fmt, ap);
	va_end(ap);
	return KT_R_CONFIG;
}

/* Error at the current line; line 0 means a whole-file problem. */
__attribute__((format(printf, 3, 4)))
static enum kt_reason perr_at(const struct parser *p, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vput_err(p->err, p->errlen, p->name, line, fmt, ap);
	va_end(ap);
	return KT_R_CONFIG;
}

#define perr(p, ...) perr_at((p), (p)->line, __VA_ARGS__)

static enum kt_reason nomem(char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "out of memory");
	return KT_R_NOMEM;
}

/* Values are quoted into messages escaped and capped. */
static void quote(const char *s, char out[ESC_LEN])
{
	kt_escape(s, strlen(s), out, ESC_LEN);
}

bool kt_parse_uint(const char *s, unsigned long long min, unsigned long long max,
		   unsigned long long *out)
{
	unsigned long long v = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned d;

		if (*s < '0' || *s > '9')
			return false;
		d = (unsigned)(*s - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

void kt_config_init(struct kt_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->connect_timeout = 2;
	cfg->timeout = 5;
	cfg->cache_ttl = 30;
	cfg->negative_cache_ttl = 5;
	cfg->min_uid = 1000;
	cfg->max_token_size = 16384;
	cfg->local_verify = KT_VERIFY_AUTO;
	cfg->jwks_refresh = 3600;
	/* Best effort: a failed strdup here is retried, and reported, by the parser. */
	cfg->cache_dir = strdup(KT_DEFAULT_CACHE_DIR);
	cfg->prompt = strdup(KT_DEFAULT_PROMPT);
	cfg->access_group = strdup(KT_ACCESS_DEFAULT_GROUP);
	cfg->access_resource = strdup(KT_ACCESS_DEFAULT_RESOURCE);
	cfg->access_verb = strdup(KT_ACCESS_DEFAULT_VERB);
	cfg->access_name = strdup(KT_ACCESS_DEFAULT_NAME);
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void kt_config_free(struct kt_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free_list(cfg->servers, cfg->n_servers);
	free(cfg->ca_file);
	free(cfg->reviewer_token_file);
	free(cfg->client_cert_file);
	free(cfg->client_key_file);
	free_list(cfg->audiences, cfg->n_audiences);
	free(cfg->cache_dir);
	free(cfg->prompt);
	free(cfg->jwks_file);
	free(cfg->jwks_uri);
	free_list(cfg->issuers, cfg->n_issuers);
	free(cfg->access_group);
	free(cfg->access_resource);
	free(cfg->access_verb);
	free(cfg->access_name);
	free(cfg->access_subresource);
	free(cfg->access_namespace);
	free(cfg->host_name);
	for (size_t i = 0; i < cfg->n_rules; i++)
		kt_rule_free(&cfg->rules[i]);
	free(cfg->rules);
	free(cfg->helper);
	memset(cfg, 0, sizeof(*cfg));
}

static const struct opt *find_opt(const char *key, size_t *index)
{
	for (size_t i = 0; i < N_OPTS; i++) {
		if (strcmp(opts[i].key, key) == 0) {
			*index = i;
			return &opts[i];
		}
	}
	return NULL;
}

static unsigned seen_line(const struct parser *p, const char *key)
{
	size_t i;

	return find_opt(key, &i) != NULL ? p->seen[i] : 0;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static char *skip_ws(char *s)
{
	while (is_ws(*s))
		s++;
	return s;
}

static enum kt_reason append(char ***list, size_t *n, const char *v, size_t vlen,
			     char *err, size_t errlen)
{
	char **grown;
	char *copy = strndup(v, vlen);

	if (copy == NULL)
		return nomem(err, errlen);
	grown = realloc(*list, (*n + 1) * sizeof(**list));
	if (grown == NULL) {
		free(copy);
		return nomem(err, errlen);
	}
	grown[(*n)++] = copy;
	*list = grown;
	return KT_R_OK;
}

static bool in_list(char *const *list, size_t n, const char *v, size_t vlen)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(list[i]) == vlen && memcmp(list[i], v, vlen) == 0)
			return true;
	return false;
}

static enum kt_reason set_server(struct parser *p, const char *v)
{
	struct kt_config *cfg = p->cfg;
	const char *why = kt_check_server(v);
	char q[ESC_LEN];
	size_t len = strlen(v);

	quote(v, q);
	if (why != NULL)
		return perr(p, "server: \"%s\" %s", q, why);
	/* https://host/ and https://host are the same server */
	while (len > 8 && v[len - 1] == '/')
		len--;
	if (in_list(cfg->servers, cfg->n_servers, v, len))
		return perr(p, "server: \"%s\" is given twice", q);
	if (cfg->n_servers >= MAX_SERVERS)
		return perr(p, "server: more than %d servers", MAX_SERVERS);
	return append(&cfg->servers, &cfg->n_servers, v, len, p->err, p->errlen);
}

static enum kt_reason set_audience(struct parser *p, const char *v)
{
	struct kt_config *cfg = p->cfg;
	char q[ESC_LEN];

	quote(v, q);
	/* no quotes or backslashes either: the value goes into a JSON request */
	for (const char *s = v; *s != '\0'; s++)
		if (*s <= 0x20 || *s >= 0x7f || *s == '"' || *s == '\\')
			return perr(p, "audience: \"%s\" must be printable ASCII without "
				    "spaces, quotes or backslashes", q);
	if (in_list(cfg->audiences, cfg->n_audiences, v, strlen(v)))
		return perr(p, "audience: \"%s\" is given twice", q);
	if (cfg->n_audiences >= MAX_AUDIENCES)
		return perr(p, "audience: more than %d audiences", MAX_AUDIENCES);
	return append(&cfg->audiences, &cfg->n_audiences, v, strlen(v), p->err, p->errlen);
}

/* issuer: repeatable, printable ASCII without spaces (compared byte for byte with iss). */
static enum kt_reason set_issuer(struct parser *p, const char *v)
{
	struct kt_config *cfg = p->cfg;
	char q[ESC_LEN];

	quote(v, q);
	for (const char *s = v; *s != '\0'; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			return perr(p, "issuer: \"%s\" must be printable ASCII without spaces", q);
	if (in_list(cfg->issuers, cfg->n_issuers, v, strlen(v)))
		return perr(p, "issuer: \"%s\" is given twice", q);
	if (cfg->n_issuers >= MAX_AUDIENCES)
		return perr(p, "issuer: more than %d issuers", MAX_AUDIENCES);
	return append(&cfg->issuers, &cfg->n_issuers, v, strlen(v), p->err, p->errlen);
}

static enum kt_reason set_local_verify(struct parser *p, enum kt_local_verify *slot, const char *v)
{
	char q[ESC_LEN];

	if (strcmp(v, "auto") == 0)
		*slot = KT_VERIFY_AUTO;
	else if (strcmp(v, "yes") == 0)
		*slot = KT_VERIFY_YES;
	else if (strcmp(v, "no") == 0)
		*slot = KT_VERIFY_NO;
	else {
		quote(v, q);
		return perr(p, "local_verify: \"%s\" is not auto, yes or no", q);
	}
	return KT_R_OK;
}

static enum kt_reason set_string(struct parser *p, char **slot, const char *v, size_t len)
{
	char *copy = strndup(v, len);

	if (copy == NULL)
		return nomem(p->err, p->errlen);
	free(*slot);   /* the default */
	*slot = copy;
	return KT_R_OK;
}

static enum kt_reason set_prompt(struct parser *p, char **slot, const char *v)
{
	size_t len = strlen(v);
	char *inner;

	if (v[0] == '"') {
		if (len < 2 || v[len - 1] != '"')
			return perr(p, "prompt: missing closing '\"'");
		v++;
		len -= 2;
	}
	if (len == 0)
		return perr(p, "prompt: is empty");
	inner = strndup(v, len);
	if (inner == NULL)
		return nomem(p->err, p->errlen);
	if (!kt_printable_utf8(inner)) {
		free(inner);
		return perr(p, "prompt: contains a control character or invalid UTF-8");
	}
	free(*slot);
	*slot = inner;
	return KT_R_OK;
}

static enum kt_reason set_value(struct parser *p, const struct opt *o, const char *v)
{
	char *base = (char *)p->cfg;
	char q[ESC_LEN];
	unsigned long long n;
	const char *why;

	quote(v, q);
	switch (o->type) {
	case OPT_SERVER:
		return set_server(p, v);
	case OPT_AUDIENCE:
		return set_audience(p, v);
	case OPT_ISSUER:
		return set_issuer(p, v);
	case OPT_LOCAL_VERIFY:
		return set_local_verify(p, (enum kt_local_verify *)(void *)(base + o->offset), v);
	case OPT_JWKS_URI:
		why = kt_check_server(v);
		if (why != NULL)
			return perr(p, "%s: \"%s\" %s", o->key, q, why);
		return set_string(p, (char **)(void *)(base + o->offset), v, strlen(v));
	case OPT_PROMPT:
		return set_prompt(p, (char **)(void *)(base + o->offset), v);
	case OPT_PATH:
		why = kt_check_path(v);
		if (why != NULL)
			return perr(p, "%s: \"%s\" %s", o->key, q, why);
		return set_string(p, (char **)(void *)(base + o->offset), v, strlen(v));
	case OPT_ACCESS:
	case OPT_HOST:
		why = o->type == OPT_ACCESS ? kt_access_check_template(v) : kt_access_check_host_name(v);
		if (why != NULL)
			return perr(p, "%s: \"%s\" %s", o->key, q, why);
		return set_string(p, (char **)(void *)(base + o->offset), v, strlen(v));
	case OPT_BOOL:
		if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0)
			*(bool *)(void *)(base + o->offset) = true;
		else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0)
			*(bool *)(void *)(base + o->offset) = false;
		else
			return perr(p, "%s: \"%s\" is not yes, no, true or false", o->key, q);
		return KT_R_OK;
	case OPT_UINT:
	case OPT_ULONG:
	case OPT_SIZE:
		if (!kt_parse_uint(v, o->min, o->max, &n))
			return perr(p, "%s: \"%s\" is not a number between %llu and %llu",
				    o->key, q, o->min, o->max);
		/* o->max keeps every value within its field */
		if (o->type == OPT_UINT)
			*(unsigned *)(void *)(base + o->offset) = (unsigned)n;
		else if (o->type == OPT_ULONG)
			*(unsigned long *)(void *)(base + o->offset) = (unsigned long)n;
		else
			*(size_t *)(void *)(base + o->offset) = (size_t)n;
		return KT_R_OK;
	}
	return perr(p, "%s: internal error", o->key);
}

static enum kt_reason add_rule(struct parser *p, enum kt_rule_action action, char *text)
{
	struct kt_config *cfg = p->cfg;
	struct kt_rule rule, *grown;
	char rerr[512];
	enum kt_reason r;

	rerr[0] = '\0';
	r = kt_rule_parse(&rule, action, skip_ws(text), rerr, sizeof(rerr));
	if (r == KT_R_NOMEM)
		return nomem(p->err, p->errlen);
	if (r != KT_R_OK)
		return perr(p, "%s", rerr);
	rule.line = p->line;
	grown = realloc(cfg->rules, (cfg->n_rules + 1) * sizeof(*grown));
	if (grown == NULL) {
		kt_rule_free(&rule);
		return nomem(p->err, p->errlen);
	}
	grown[cfg->n_rules++] = rule;
	cfg->rules = grown;
	return KT_R_OK;
}

static bool is_word(const char *s, size_t len, const char *word)
{
	return len == strlen(word) && memcmp(s, word, len) == 0 &&
	       (is_ws(s[len]) || s[len] == '\0');
}

/* line is NUL-terminated, at most MAX_LINE bytes, and holds no NUL of its own. */
static enum kt_reason parse_line(struct parser *p, char *line)
{
	char *s = skip_ws(line), *end, *key, *eq, *v;
	size_t klen, index;
	bool has_eq;
	const struct opt *o;
	char q[ESC_LEN];

	end = s + strlen(s);
	while (end > s && is_ws(end[-1]))
		*--end = '\0';
	if (*s == '\0' || *s == '#')
		return KT_R_OK;
	for (const char *c = s; *c != '\0'; c++)
		if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
			return perr(p, "contains a control character (\\x%02x)",
				    (unsigned)(unsigned char)*c);

	klen = strcspn(s, " \t=");
	if (is_word(s, klen, "map"))
		return add_rule(p, KT_RULE_MAP, s + klen);
	if (is_word(s, klen, "deny"))
		return add_rule(p, KT_RULE_DENY, s + klen);

	if (klen == 0)
		return perr(p, "expected \"key = value\", found no key");
	key = s;
	eq = skip_ws(s + klen);
	has_eq = *eq == '=';
	key[klen] = '\0';   /* may overwrite the '=' itself; has_eq remembers it */
	quote(key, q);
	o = find_opt(key, &index);
	if (o == NULL)
		return perr(p, "unknown key \"%s\"", q);
	if (!has_eq)
		return perr(p, "%s: expected \"%s = value\"", o->key, o->key);
	v = skip_ws(eq + 1);
	if (*v == '\0')
		return perr(p, "%s: value is empty", o->key);
	if (o->type != OPT_SERVER && o->type != OPT_AUDIENCE && o->type != OPT_ISSUER &&
	    p->seen[index] != 0)
		return perr(p, "%s: given twice (first on line %u)", o->key, p->seen[index]);
	if (p->seen[index] == 0)
		p->seen[index] = p->line;
	return set_value(p, o, v);
}

/* Cross-key rules; error lines point at the key that made the combination wrong. */
static enum kt_reason finish(struct parser *p)
{
	struct kt_config *cfg = p->cfg;
	unsigned l_tok = seen_line(p, "reviewer_token_file");
	unsigned l_cert = seen_line(p, "client_cert_file");
	unsigned l_key = seen_line(p, "client_key_file");
	unsigned l_ct = seen_line(p, "connect_timeout");
	unsigned l_t = seen_line(p, "timeout");

	if (cfg->n_servers == 0)
		return perr_at(p, 0, "missing required key \"server\"");
	if (cfg->ca_file == NULL)
		return perr_at(p, 0, "missing required key \"ca_file\"");
	if (cfg->n_audiences == 0)
		return perr_at(p, 0, "missing required key \"audience\"");
	if (l_tok != 0 && (l_cert != 0 || l_key != 0)) {
		unsigned l = l_tok > l_cert ? l_tok : l_cert;

		return perr_at(p, l > l_key ? l : l_key,
			       "reviewer_token_file and client_cert_file/client_key_file are "
			       "mutually exclusive: configure one credential");
	}
	if (l_cert != 0 && l_key == 0)
		return perr_at(p, l_cert, "client_cert_file: requires client_key_file");
	if (l_key != 0 && l_cert == 0)
		return perr_at(p, l_key, "client_key_file: requires client_cert_file");
	if (l_tok == 0 && l_cert == 0)
		return perr_at(p, 0, "missing credential: set reviewer_token_file, or "
			       "client_cert_file and client_key_file");
	if (cfg->connect_timeout > cfg->timeout) {
		/* only an explicit connect_timeout is an error; the default follows timeout */
		if (l_ct == 0)
			cfg->connect_timeout = cfg->timeout;
		else
			return perr_at(p, l_ct > l_t ? l_ct : l_t,
				       "connect_timeout (%u) must not exceed timeout (%u)",
				       cfg->connect_timeout, cfg->timeout);
	}
	if (cfg->jwks_file != NULL && cfg->n_issuers == 0)
		return perr_at(p, seen_line(p, "jwks_file"), "jwks_file: requires issuer (there is "
			       "no discovery document to take it from)");
	if (cfg->jwks_file != NULL && cfg->jwks_uri != NULL)
		return perr_at(p, seen_line(p, "jwks_uri"), "jwks_uri: has no use with jwks_file");
	if (cfg->offline_grace > 0 && cfg->local_verify == KT_VERIFY_NO)
		return perr_at(p, seen_line(p, "offline_grace"), "offline_grace: requires "
			       "local_verify = auto or yes (a token is let in offline only once "
			       "its signature is checked)");
	if (cfg->cache_dir == NULL && (cfg->cache_dir = strdup(KT_DEFAULT_CACHE_DIR)) == NULL)
		return nomem(p->err, p->errlen);
	if (cfg->prompt == NULL && (cfg->prompt = strdup(KT_DEFAULT_PROMPT)) == NULL)
		return nomem(p->err, p->errlen);
	if ((cfg->access_group == NULL && (cfg->access_group = strdup(KT_ACCESS_DEFAULT_GROUP)) == NULL) ||
	    (cfg->access_resource == NULL &&
	     (cfg->access_resource = strdup(KT_ACCESS_DEFAULT_RESOURCE)) == NULL) ||
	    (cfg->access_verb == NULL && (cfg->access_verb = strdup(KT_ACCESS_DEFAULT_VERB)) == NULL) ||
	    (cfg->access_name == NULL && (cfg->access_name = strdup(KT_ACCESS_DEFAULT_NAME)) == NULL))
		return nomem(p->err, p->errlen);
	return KT_R_OK;
}

enum kt_reason kt_config_parse_buffer(struct kt_config *cfg, const char *name,
				      const char *buf, size_t len, char *err, size_t errlen)
{
	struct parser p = { .cfg = cfg, .name = name, .err = err, .errlen = errlen };
	const char *pos = buf, *end = buf;
	char line[MAX_LINE + 1];
	char *path;
	enum kt_reason r;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (name == NULL)
		p.name = name = "(config)";
	path = strdup(name);
	if (path == NULL)
		return nomem(err, errlen);
	free(cfg->path);
	cfg->path = path;

	if (buf != NULL)
		end += len;   /* buf may be NULL when len is 0 */
	while (pos < end) {
		const char *nl = memchr(pos, '\n', (size_t)(end - pos));
		size_t n = (size_t)((nl != NULL ? nl : end) - pos);

		p.line++;
		if (memchr(pos, '\0', n) != NULL)
			return perr(&p, "contains a NUL byte");
		if (n > MAX_LINE)
			return perr(&p, "line is longer than %d characters", MAX_LINE);
		memcpy(line, pos, n);
		line[n] = '\0';
		r = parse_line(&p, line);
		if (r != KT_R_OK)
			return r;
		pos = nl != NULL ? nl + 1 : end;
	}
	return finish(&p);
}

/* How a refused configuration file is reported (tests and administrators know these words). */
static const struct kt_file_words conf_file_words[KT_FILE__COUNT] = {
	[KT_FILE_MISSING] = { NULL, " does not exist", KT_DETAIL_NONE },
	[KT_FILE_LINK]    = { NULL, " is a symbolic link", KT_DETAIL_NONE },
	[KT_FILE_OPEN]    = { NULL, " cannot be opened", KT_DETAIL_ERRNO },
	[KT_FILE_STAT]    = { NULL, " cannot be examined", KT_DETAIL_ERRNO },
	[KT_FILE_TYPE]    = { NULL, " is not a regular file", KT_DETAIL_NONE },
	[KT_FILE_OWNER]   = { NULL, " is owned by uid", KT_DETAIL_OWNER },
	[KT_FILE_MODE]    = { NULL, " is writable by group or others", KT_DETAIL_NONE },
	[KT_FILE_SIZE]    = { NULL, " is larger than", KT_DETAIL_MAX },
	[KT_FILE_READ]    = { NULL, " cannot be read", KT_DETAIL_ERRNO },
};

enum kt_reason kt_config_load(struct kt_config *cfg, const char *path, uid_t owner,
			      char *err, size_t errlen)
{
	const struct kt_file_policy policy = {
		.owner_rule = KT_OWNER_UID, .owner = owner, .forbidden = S_IWGRP | S_IWOTH,
		.max_size = KT_CONF_MAX_SIZE, .allow_empty = true, .words = conf_file_words,
	};
	struct kt_secret text;
	enum kt_file_fault f;
	enum kt_reason r;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (path == NULL || *path == '\0')
		return fail(err, errlen, "no configuration file given");
	if (KT_TRUSTED_UID != 0 && geteuid() == 0)
		return fail(err, errlen, "this is a test build (trusted owner uid %lu), not for root",
		            (unsigned long)KT_TRUSTED_UID);
	f = kt_read_private_file(path, &policy, &text, err, errlen);
	if (f == KT_FILE_NOMEM)
		return nomem(err, errlen);
	if (f != KT_FILE_OK)
		return KT_R_CONFIG;
	r = kt_config_parse_buffer(cfg, path, text.p, text.len, err, errlen);
	kt_secret_free(&text);
	return r;
}

static enum kt_reason arg_path(const char *arg, const char *v, char *err, size_t errlen)
{
	char q[ESC_LEN];
	const char *why = kt_check_path(v);

	if (why == NULL)
		return KT_R_OK;
	quote(arg, q);
	return fail(err, errlen, "module argument \"%s\": path %s", q, why);
}

enum kt_reason kt_config_parse_args(struct kt_config *cfg, int argc, const char **argv,
				    const char **conf_path, char *err, size_t errlen)
{
	const char *conf = NULL;
	char q[ESC_LEN];
	enum kt_reason r;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (a == NULL)
			return fail(err, errlen, "module argument %d is missing", i + 1);
		if (strncmp(a, "conf=", 5) == 0) {
			if (conf != NULL)
				return fail(err, errlen, "module argument conf= is given twice");
			if ((r = arg_path(a, a + 5, err, errlen)) != KT_R_OK)
				return r;
			conf = a + 5;
		} else if (strncmp(a, "helper=", 7) == 0) {
			if (cfg->helper != NULL)
				return fail(err, errlen, "module argument helper= is given twice");
			if ((r = arg_path(a, a + 7, err, errlen)) != KT_R_OK)
				return r;
			if ((cfg->helper = strdup(a + 7)) == NULL)
				return nomem(err, errlen);
		} else if (strcmp(a, "debug") == 0) {
			cfg->debug = true;
		} else if (strcmp(a, "use_first_pass") == 0) {
			cfg->use_first_pass = true;
		} else if (strcmp(a, "try_first_pass") == 0) {
			cfg->try_first_pass = true;
		} else if (strcmp(a, "ignore_non_token") == 0) {
			cfg->ignore_non_token = true;
		} else {
			quote(a, q);
			return fail(err, errlen, "unknown module argument \"%s\"", q);
		}
	}
	if (cfg->use_first_pass && cfg->try_first_pass)
		return fail(err, errlen, "module arguments use_first_pass and try_first_pass "
			    "are mutually exclusive");
	if (conf_path != NULL)
		*conf_path = conf != NULL ? conf : KT_DEFAULT_CONF;
	return KT_R_OK;
}
