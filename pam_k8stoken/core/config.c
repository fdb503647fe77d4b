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
#include "io.h"
#include "number.h"
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
	OPT_FLAG,   /* a bool set by a module argument without a value */
};

/* Where a key may be given; a row without IN_FILE is a module argument only. */
#define IN_FILE 1u   /* "key = value" in the file */
#define IN_ARGS 2u   /* module argument "key" (OPT_FLAG) or "key=value" */

#define NO_FIELD ((size_t)-1)   /* conf=: handed back to the caller, not stored */

/*
 * One row per key, pam-krb5 style: type, storage, range, default and a line of
 * documentation. kt_config_init, kt_config_free, both parsers and `k8stoken config-keys`
 * walk this table; tests/module/test_config_keys.py holds the docs to it. Sorted by key.
 */
struct opt {
	const char *key;
	enum opt_type type;
	unsigned where;
	size_t offset;
	size_t count;                   /* lists: offset of the number of entries */
	unsigned long long min, max;    /* numbers */
	unsigned long long def;         /* numbers, booleans, local_verify */
	const char *def_str;            /* strings: copied by kt_config_init; NULL: none */
	const char *doc;
};

#define OFF(field) offsetof(struct kt_config, field)

#define ROW(k, t, w, field, ...) \
	{ .key = (k), .type = (t), .where = (w), .offset = OFF(field), __VA_ARGS__ }
#define LIST(k, t, field, n, text) \
	{ .key = (k), .type = (t), .where = IN_FILE, .offset = OFF(field), .count = OFF(n), \
	  .doc = (text) }
#define NUMBER(lo, hi, d) .min = (lo), .max = (hi), .def = (d)
#define BOOL(d)           .def = (d)
#define ENUM(d)           .def = (d)
#define STRING(d)         .def_str = (d)
#define NONE              .def_str = NULL
#define DOC(text)         .doc = (text)

static const struct opt opts[] = {
	ROW("access_group",        OPT_ACCESS, IN_FILE, access_group,
	    STRING(KT_ACCESS_DEFAULT_GROUP), DOC("API group of the SubjectAccessReview")),
	ROW("access_name",         OPT_ACCESS, IN_FILE, access_name,
	    STRING(KT_ACCESS_DEFAULT_NAME), DOC("resource name of the SubjectAccessReview")),
	ROW("access_namespace",    OPT_ACCESS, IN_FILE, access_namespace,
	    NONE, DOC("namespace of the SubjectAccessReview; none: cluster scope")),
	ROW("access_resource",     OPT_ACCESS, IN_FILE, access_resource,
	    STRING(KT_ACCESS_DEFAULT_RESOURCE), DOC("resource of the SubjectAccessReview")),
	ROW("access_review",       OPT_BOOL,   IN_FILE, access_review,
	    BOOL(false), DOC("ask a SubjectAccessReview after the TokenReview and the rules")),
	ROW("access_subresource",  OPT_ACCESS, IN_FILE, access_subresource,
	    NONE, DOC("subresource of the SubjectAccessReview; none: not sent")),
	ROW("access_verb",         OPT_ACCESS, IN_FILE, access_verb,
	    STRING(KT_ACCESS_DEFAULT_VERB), DOC("verb of the SubjectAccessReview")),
	ROW("allow_legacy_tokens", OPT_BOOL,   IN_FILE, allow_legacy_tokens,
	    BOOL(false), DOC("accept tokens without an expiry")),
	ROW("allow_root",          OPT_BOOL,   IN_FILE, allow_root,
	    BOOL(false), DOC("let a token act as uid 0")),
	LIST("audience",           OPT_AUDIENCE, audiences, n_audiences,
	     "required, up to 16: audiences sent and one of them required in the reply"),
	ROW("ca_file",             OPT_PATH,   IN_FILE, ca_file,
	    NONE, DOC("required: PEM CA bundle trusted for the API server")),
	ROW("cache_dir",           OPT_PATH,   IN_FILE, cache_dir,
	    STRING(KT_DEFAULT_CACHE_DIR), DOC("directory of the shared review cache")),
	ROW("cache_ttl",           OPT_UINT,   IN_FILE, cache_ttl,
	    NUMBER(0, 3600, 30), DOC("seconds a positive review is reused; 0: not cached")),
	ROW("client_cert_file",    OPT_PATH,   IN_FILE, client_cert_file,
	    NONE, DOC("reviewer client certificate (with client_key_file)")),
	ROW("client_key_file",     OPT_PATH,   IN_FILE, client_key_file,
	    NONE, DOC("reviewer client key (with client_cert_file)")),
	{ .key = "conf", .type = OPT_PATH, .where = IN_ARGS, .offset = NO_FIELD,
	  STRING(KT_DEFAULT_CONF), DOC("the configuration file") },
	ROW("connect_timeout",     OPT_UINT,   IN_FILE, connect_timeout,
	    NUMBER(1, 30, 2), DOC("seconds per connection attempt")),
	ROW("debug",               OPT_FLAG,   IN_ARGS, debug,
	    BOOL(false), DOC("two extra debug log lines per login, never the token")),
	ROW("helper",              OPT_PATH,   IN_ARGS, helper,
	    NONE, DOC("the helper program (for tests); none: the compiled-in path")),
	ROW("host_name",           OPT_HOST,   IN_FILE, host_name,
	    NONE, DOC("this host's name for %h; none: gethostname()")),
	ROW("ignore_non_token",    OPT_FLAG,   IN_ARGS, ignore_non_token,
	    BOOL(false), DOC("PAM_IGNORE instead of PAM_AUTH_ERR for an answer that is no token")),
	LIST("issuer",             OPT_ISSUER, issuers, n_issuers,
	     "accepted iss of tokens; none: the discovery document's issuer"),
	ROW("jwks_file",           OPT_PATH,   IN_FILE, jwks_file,
	    NONE, DOC("key set from this file instead of discovery (requires issuer)")),
	ROW("jwks_refresh",        OPT_UINT,   IN_FILE, jwks_refresh,
	    NUMBER(60, 86400, 3600), DOC("seconds between two fetches of the key set")),
	ROW("jwks_uri",            OPT_JWKS_URI, IN_FILE, jwks_uri,
	    NONE, DOC("the one key set URL on another host discovery may name")),
	ROW("local_verify",        OPT_LOCAL_VERIFY, IN_FILE, local_verify,
	    ENUM(KT_VERIFY_AUTO), DOC("check tokens with the cluster's keys before any review")),
	ROW("max_token_size",      OPT_SIZE,   IN_FILE, max_token_size,
	    NUMBER(64, 1048576, 16384), DOC("bytes; longer answers are refused")),
	ROW("min_uid",             OPT_ULONG,  IN_FILE, min_uid,
	    NUMBER(0, 4294967294ULL, 1000), DOC("lowest uid a token may act as (not for uid 0)")),
	ROW("negative_cache_ttl",  OPT_UINT,   IN_FILE, negative_cache_ttl,
	    NUMBER(0, 300, 5), DOC("seconds a \"not authenticated\" answer is remembered")),
	ROW("offline_grace",       OPT_UINT,   IN_FILE, offline_grace,
	    NUMBER(0, 86400, 0), DOC("seconds a verified token may log in while offline; 0: off")),
	ROW("prompt",              OPT_PROMPT, IN_FILE, prompt,
	    STRING(KT_DEFAULT_PROMPT), DOC("text of the first token prompt")),
	ROW("reviewer_token_file", OPT_PATH,   IN_FILE, reviewer_token_file,
	    NONE, DOC("bearer token of the reviewer (or client_cert_file)")),
	LIST("server",             OPT_SERVER, servers, n_servers,
	     "required, up to 8: API server URL, in failover order"),
	ROW("timeout",             OPT_UINT,   IN_FILE, timeout,
	    NUMBER(1, 60, 5), DOC("seconds for the whole review, all servers")),
	ROW("try_first_pass",      OPT_FLAG,   IN_ARGS, try_first_pass,
	    BOOL(false), DOC("token from PAM_AUTHTOK of an earlier module, else prompt")),
	ROW("use_first_pass",      OPT_FLAG,   IN_ARGS, use_first_pass,
	    BOOL(false), DOC("token from PAM_AUTHTOK of an earlier module, never prompt")),
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

/* The row's field in cfg; only for a row that is stored (not NO_FIELD). */
static void *slot_of(struct kt_config *cfg, const struct opt *o)
{
	return (char *)cfg + o->offset;
}

static bool is_string(enum opt_type t)
{
	return t == OPT_PATH || t == OPT_PROMPT || t == OPT_ACCESS || t == OPT_HOST ||
	       t == OPT_JWKS_URI;
}

static bool is_list(enum opt_type t)
{
	return t == OPT_SERVER || t == OPT_AUDIENCE || t == OPT_ISSUER;
}

static const char *const verify_names[] = {
	[KT_VERIFY_AUTO] = "auto", [KT_VERIFY_YES] = "yes", [KT_VERIFY_NO] = "no",
};

void kt_config_init(struct kt_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt *o = &opts[i];
		void *slot;

		if (o->offset == NO_FIELD)
			continue;
		slot = slot_of(cfg, o);
		switch (o->type) {
		case OPT_UINT:
			*(unsigned *)slot = (unsigned)o->def;
			break;
		case OPT_ULONG:
			*(unsigned long *)slot = (unsigned long)o->def;
			break;
		case OPT_SIZE:
			*(size_t *)slot = (size_t)o->def;
			break;
		case OPT_BOOL:
		case OPT_FLAG:
			*(bool *)slot = o->def != 0;
			break;
		case OPT_LOCAL_VERIFY:
			*(enum kt_local_verify *)slot = (enum kt_local_verify)o->def;
			break;
		default:
			/* Best effort: a failed strdup is retried, and reported, by the parser. */
			if (is_string(o->type) && o->def_str != NULL)
				*(char **)slot = strdup(o->def_str);
			break;
		}
	}
}

/* The parser's retry of kt_config_init's copies, so that a missing default is never used. */
static enum kt_reason copy_defaults(struct kt_config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt *o = &opts[i];
		char **slot;

		if (o->offset == NO_FIELD || !is_string(o->type) || o->def_str == NULL)
			continue;
		slot = slot_of(cfg, o);
		if (*slot == NULL && (*slot = strdup(o->def_str)) == NULL)
			return nomem(err, errlen);
	}
	return KT_R_OK;
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
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt *o = &opts[i];

		if (o->offset == NO_FIELD)
			continue;
		if (is_string(o->type))
			free(*(char **)slot_of(cfg, o));
		else if (is_list(o->type))
			free_list(*(char ***)slot_of(cfg, o),
				  *(size_t *)(void *)((char *)cfg + o->count));
	}
	/* not keys */
	free(cfg->path);
	for (size_t i = 0; i < cfg->n_rules; i++)
		kt_rule_free(&cfg->rules[i]);
	free(cfg->rules);
	memset(cfg, 0, sizeof(*cfg));
}

static const char *kind_name(enum opt_type t)
{
	switch (t) {
	case OPT_SERVER:
	case OPT_JWKS_URI:
		return "url";
	case OPT_AUDIENCE:
	case OPT_ISSUER:
	case OPT_PROMPT:
		return "text";
	case OPT_PATH:
		return "path";
	case OPT_BOOL:
		return "yes|no";
	case OPT_UINT:
	case OPT_ULONG:
	case OPT_SIZE:
		return "number";
	case OPT_ACCESS:
		return "template";
	case OPT_HOST:
		return "name";
	case OPT_LOCAL_VERIFY:
		return "auto|yes|no";
	case OPT_FLAG:
		return "flag";
	}
	return "?";
}

bool kt_config_key(size_t i, struct kt_config_key *out)
{
	const struct opt *o;

	if (i >= N_OPTS)
		return false;
	o = &opts[i];
	memset(out, 0, sizeof(*out));
	out->key = o->key;
	out->kind = kind_name(o->type);
	out->repeatable = is_list(o->type);
	out->in_file = (o->where & IN_FILE) != 0;
	out->module_arg = (o->where & IN_ARGS) != 0;
	out->doc = o->doc;
	switch (o->type) {
	case OPT_UINT:
	case OPT_ULONG:
	case OPT_SIZE:
		out->has_range = true;
		out->min = o->min;
		out->max = o->max;
		snprintf(out->def, sizeof(out->def), "%llu", o->def);
		break;
	case OPT_BOOL:
		snprintf(out->def, sizeof(out->def), "%s", o->def != 0 ? "yes" : "no");
		break;
	case OPT_LOCAL_VERIFY:
		snprintf(out->def, sizeof(out->def), "%s", verify_names[o->def]);
		break;
	case OPT_PROMPT:
		/* quoted, as the file writes it to keep the trailing space */
		if (o->def_str != NULL)
			snprintf(out->def, sizeof(out->def), "\"%s\"", o->def_str);
		break;
	default:
		/* a flag is off unless given; lists have no default */
		if (is_string(o->type) && o->def_str != NULL)
			snprintf(out->def, sizeof(out->def), "%s", o->def_str);
		break;
	}
	return true;
}

/* The row of `key` that may be given where `where` says (IN_FILE or IN_ARGS). */
static const struct opt *find_opt(const char *key, unsigned where, size_t *index)
{
	for (size_t i = 0; i < N_OPTS; i++) {
		if ((opts[i].where & where) != 0 && strcmp(opts[i].key, key) == 0) {
			*index = i;
			return &opts[i];
		}
	}
	return NULL;
}

static unsigned seen_line(const struct parser *p, const char *key)
{
	size_t i;

	return find_opt(key, IN_FILE, &i) != NULL ? p->seen[i] : 0;
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

	for (size_t i = 0; i < sizeof(verify_names) / sizeof(verify_names[0]); i++) {
		if (strcmp(v, verify_names[i]) == 0) {
			*slot = (enum kt_local_verify)i;
			return KT_R_OK;
		}
	}
	quote(v, q);
	return perr(p, "local_verify: \"%s\" is not auto, yes or no", q);
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
	case OPT_FLAG:
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
	o = find_opt(key, IN_FILE, &index);
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
	r = finish(&p);
	return r == KT_R_OK ? copy_defaults(cfg, err, errlen) : r;
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

/* The row of module argument `a`: "key" for a flag, else "key=value" with *value after '='. */
static const struct opt *find_arg(const char *a, size_t *index, const char **value)
{
	for (size_t i = 0; i < N_OPTS; i++) {
		const struct opt *o = &opts[i];
		size_t klen = strlen(o->key);

		if ((o->where & IN_ARGS) == 0 || strncmp(a, o->key, klen) != 0)
			continue;
		if (o->type == OPT_FLAG ? a[klen] == '\0' : a[klen] == '=') {
			*index = i;
			*value = o->type == OPT_FLAG ? a + klen : a + klen + 1;
			return o;
		}
	}
	return NULL;
}

/* The default of conf=, the one row without a field. */
static const char *default_conf(void)
{
	size_t i = 0;

	while (i + 1 < N_OPTS && opts[i].offset != NO_FIELD)
		i++;
	return opts[i].def_str;
}

/* key=value: paths keep the argument's own messages; conf= is handed back in *conf. */
static enum kt_reason set_arg(struct parser *p, const struct opt *o, const char *a,
			      const char *v, const char **conf)
{
	enum kt_reason r;

	if (o->type == OPT_PATH) {
		if ((r = arg_path(a, v, p->err, p->errlen)) != KT_R_OK)
			return r;
		if (o->offset == NO_FIELD) {
			*conf = v;
			return KT_R_OK;
		}
		return set_string(p, (char **)slot_of(p->cfg, o), v, strlen(v));
	}
	return set_value(p, o, v);
}

enum kt_reason kt_config_parse_args(struct kt_config *cfg, int argc, const char **argv,
				    const char **conf_path, char *err, size_t errlen)
{
	struct parser p = { .cfg = cfg, .name = "module argument", .err = err, .errlen = errlen };
	const char *conf = NULL, *v;
	const struct opt *o;
	char q[ESC_LEN];
	enum kt_reason r;
	size_t index;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (a == NULL)
			return fail(err, errlen, "module argument %d is missing", i + 1);
		o = find_arg(a, &index, &v);
		if (o == NULL) {
			quote(a, q);
			return fail(err, errlen, "unknown module argument \"%s\"", q);
		}
		if (o->type == OPT_FLAG) {
			*(bool *)slot_of(cfg, o) = true;   /* a repeated flag is harmless */
			continue;
		}
		if (p.seen[index] != 0)
			return fail(err, errlen, "module argument %s= is given twice", o->key);
		p.seen[index] = (unsigned)i + 1;
		if ((r = set_arg(&p, o, a, v, &conf)) != KT_R_OK)
			return r;
	}
	/* cross-argument checks */
	if (cfg->use_first_pass && cfg->try_first_pass)
		return fail(err, errlen, "module arguments use_first_pass and try_first_pass "
			    "are mutually exclusive");
	if (conf_path != NULL)
		*conf_path = conf != NULL ? conf : default_conf();
	return KT_R_OK;
}
