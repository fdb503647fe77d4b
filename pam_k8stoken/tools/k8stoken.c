/*
 * k8stoken: the administrator's tool (docs/design.md §9).
 *   k8stoken check [--conf F] [--user U] [--service S] [--helper H]   token on stdin, decision on stdout
 *   k8stoken selftest [--conf F] [--helper H]           connectivity, CA, reviewer RBAC
 *   k8stoken cache flush [--conf F] [--serviceaccount NS/NAME]
 *   k8stoken cache stats [--conf F]
 *   k8stoken renew [--conf F] [--force]                  renew the reviewer token (renew.c)
 *   k8stoken enroll --bundle DIR [--conf F] [--force] [--helper H]   install a bundle, selftest
 *   k8stoken config-keys                                 every key and module argument
 * Exit codes: 0 allowed / all good, 1 denied, 2 unavailable or failed check, 3 usage/config.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "decide.h"
#include "io.h"
#include "logline.h"
#include "renew.h"
#include "review.h"
#include "secure.h"
#include "spawn.h"
#include "trusted_owner.h"

#define EXIT_ALLOW 0
#define EXIT_DENY 1
#define EXIT_UNAVAILABLE 2
#define EXIT_USAGE 3

/* A string that is JWT-shaped enough to be reviewed and certainly not valid anywhere. */
#define SELFTEST_TOKEN "k8stoken-selftest.not-a-real-token.selftest"

struct options {
	const char *conf;
	const char *user;
	const char *helper;
	const char *serviceaccount;
	const char *service;
	const char *bundle;
	bool force;
};

static void usage(FILE *to)
{
	fprintf(to,
	        "usage: k8stoken check [--conf FILE] [--user USER] [--service NAME] [--helper PATH] < token\n"
	        "       k8stoken selftest [--conf FILE] [--helper PATH]\n"
	        "       k8stoken cache flush [--conf FILE] [--serviceaccount NS/NAME]\n"
	        "       k8stoken cache stats [--conf FILE]\n"
	        "       k8stoken renew [--conf FILE] [--force]\n"
	        "       k8stoken enroll --bundle DIR [--conf FILE] [--force] [--helper PATH]\n"
	        "       k8stoken config-keys\n"
	        "\n"
	        "check     reads a ServiceAccount token on stdin and shows the decision\n"
	        "          pam_k8stoken would make for USER (without --user: the token only),\n"
	        "          with the access review for PAM service NAME (default sshd)\n"
	        "selftest  checks every server line: TLS against ca_file, the reviewer\n"
	        "          credential, and that it may create tokenreviews (and\n"
	        "          subjectaccessreviews when access_review = yes)\n"
	        "cache     flush removes remembered reviews (all, or one ServiceAccount's);\n"
	        "          stats shows entries, hits and misses\n"
	        "renew     replaces the reviewer token with a new one of the same lifetime\n"
	        "          once less than a third of it is left (--force: now)\n"
	        "enroll    installs a bundle of `kubectl k8stoken enroll HOST --output DIR`\n"
	        "          (never over an existing file without --force), then runs selftest\n"
	        "config-keys  lists every configuration key and module argument, one per\n"
	        "          line, tab-separated: key, where, kind, default, range, description\n"
	        "\n"
	        "FILE defaults to " KT_DEFAULT_CONF ".\n"
	        "Exit status: 0 allowed/healthy, 1 denied, 2 unavailable, 3 usage or configuration.\n");
}

/* Options allowed per command, as a string of letters: c conf, h helper, u user, s serviceaccount,
 * v service, b bundle, f --force. */
static int parse_options(int argc, char **argv, int first, struct options *o, const char *allowed)
{
	o->conf = KT_DEFAULT_CONF;
	for (int i = first; i < argc; i++) {
		const char **slot = NULL;

		if (strcmp(argv[i], "--conf") == 0 && strchr(allowed, 'c'))
			slot = &o->conf;
		else if (strcmp(argv[i], "--helper") == 0 && strchr(allowed, 'h'))
			slot = &o->helper;
		else if (strcmp(argv[i], "--user") == 0 && strchr(allowed, 'u'))
			slot = &o->user;
		else if (strcmp(argv[i], "--serviceaccount") == 0 && strchr(allowed, 's'))
			slot = &o->serviceaccount;
		else if (strcmp(argv[i], "--service") == 0 && strchr(allowed, 'v'))
			slot = &o->service;
		else if (strcmp(argv[i], "--bundle") == 0 && strchr(allowed, 'b'))
			slot = &o->bundle;
		if (strcmp(argv[i], "--force") == 0 && strchr(allowed, 'f')) {
			o->force = true;
			continue;
		}
		if (slot == NULL || i + 1 >= argc) {
			fprintf(stderr, "k8stoken: unexpected argument '%s'\n", argv[i]);
			return -1;
		}
		*slot = argv[++i];
	}
	return 0;
}

static int load_config(const struct options *o, struct kt_config *cfg)
{
	char err[512];

	kt_config_init(cfg);
	if (kt_config_load(cfg, o->conf, KT_TRUSTED_UID, err, sizeof(err)) != KT_R_OK) {
		fprintf(stderr, "k8stoken: configuration refused: %s\n", err);
		return -1;
	}
	if (o->helper != NULL) {
		cfg->helper = strdup(o->helper);
		if (cfg->helper == NULL)
			return -1;
	}
	return 0;
}

/* `check`'s exit status for each reason: the tool_exit column of reason_list.h. */
static const int exit_codes[KT_R__COUNT] = {
#define KT_REASON(id, name, class, pam, log, tool_exit, what) [KT_R_##id] = tool_exit,
#include "reason_list.h"
#undef KT_REASON
};

static int exit_code(enum kt_reason r)
{
	return (unsigned)r < KT_R__COUNT ? exit_codes[r] : EXIT_UNAVAILABLE;
}

/* Reads up to max + 1 bytes of token from stdin, dropping one trailing newline (echo, a tty). */
static int read_stdin_token(size_t max, struct kt_secret *tok)
{
	/* max + 1: enough to know it is too long */
	if (kt_secret_alloc(tok, max + 2) < 0)
		return -1;
	kt_secret_read(tok, 0);   /* a read error leaves tok empty: an empty token */
	if (tok->len > 0 && tok->p[tok->len - 1] == '\n')
		tok->len--;
	if (tok->len > 0 && tok->p[tok->len - 1] == '\r')
		tok->len--;
	tok->p[tok->len] = '\0';
	return 0;
}

/* The access review: what was asked and what RBAC answered (docs/design.md §10). */
static void print_access(const struct kt_decision *d, const char *user)
{
	char asked[7 * (KT_ACCESS_VALUE_MAX + 16)];

	if (d->access == KT_ACCESS_OFF)
		return;
	if (!d->access_wanted) {
		printf("access:          not asked%s\n", user == NULL ? " (no --user given)" : "");
		return;
	}
	kt_access_describe(&d->access_attrs, asked, sizeof(asked));
	printf("access:          %s%s\n", kt_access_use_name(d->access),
	       d->access == KT_ACCESS_ALLOWED && d->cache == KT_CACHE_USED_HIT ? " (cached)" : "");
	printf("access asked:    %s\n", asked);
}

/* A decision's text for the terminal, as the log line writes it (kt_escape). */
static const char *escaped(const char *text, char esc[1024])
{
	kt_escape(text, strlen(text), esc, 1024);
	return esc;
}

static void print_decision(const struct kt_decision *d, const char *user)
{
	char esc[1024];
	const struct kt_identity *id = &d->id;

	printf("decision:        %s (%s)\n",
	       kt_reason_class(d->reason) == KT_CLASS_ALLOW ? (user ? "allow" : "token accepted")
	                                                    : "deny",
	       kt_reason_name(d->reason));
	if (id->username != NULL) {
		printf("serviceaccount:  %s/%s\n", id->sa_namespace, id->sa_name);
		printf("uid:             %s\n", id->uid);
		printf("groups:         ");
		for (size_t i = 0; i < id->n_groups; i++)
			printf(" %s", id->groups[i]);
		printf("\n");
		if (id->credential_id != NULL)
			printf("credential:      %s\n", id->credential_id);
		if (id->pod_name != NULL)
			printf("pod:             %s (%s)\n", id->pod_name, id->pod_uid ? id->pod_uid : "");
		if (id->node_name != NULL)
			printf("node:            %s\n", id->node_name);
	}
	if (user != NULL && d->account_checked)
		printf("local user:      %s (uid %lu)\n", user, (unsigned long)d->local_uid);
	if (d->rule_line != 0)
		printf("rule:            line %u\n", d->rule_line);
	print_access(d, user);
	/* local verification with the cluster's keys (docs/design.md §6.3) */
	if (d->local.verified)
		printf("local check:     verified with the cluster's keys (fetched %lld s ago)\n",
		       d->local.keys_age_ms / 1000);
	else if (d->local.warning[0] != '\0')
		printf("local check:     not done: %s\n", escaped(d->local.warning, esc));
	if (d->reviewed)
		printf("server:          %s (HTTP %ld)\n", d->server ? d->server : "-", d->http_status);
	if (d->cache != KT_CACHE_OFF)
		printf("cache:           %s\n", d->cache == KT_CACHE_USED_HIT ? "hit" : "miss");
	if (d->cache_error[0] != '\0')
		printf("cache:           unavailable: %s\n", d->cache_error);
	if (d->detail[0] != '\0')
		printf("detail:          %s\n", escaped(d->detail, esc));
	if (d->fingerprint[0] != '\0')
		printf("fingerprint:     %s\n", d->fingerprint);
	printf("time:            %ld ms\n", d->elapsed_ms);
	if (user == NULL && d->reason == KT_R_OK)
		printf("note:            no --user given, mapping rules not evaluated\n");
}

static int cmd_check(const struct options *o)
{
	struct kt_config cfg;
	struct kt_decision d;
	struct kt_secret token;
	int rc;

	if (load_config(o, &cfg) < 0) {
		kt_config_free(&cfg);
		return EXIT_USAGE;
	}
	/* one byte more than allowed, so an over-long token reaches the size check */
	if (read_stdin_token(cfg.max_token_size + 1, &token) < 0) {
		kt_config_free(&cfg);
		return EXIT_UNAVAILABLE;
	}
	cfg.service = o->service != NULL ? o->service : "sshd";
	kt_decide(&cfg, o->conf, token.p, token.len, o->user, &d);
	print_decision(&d, o->user);
	rc = exit_code(d.reason);
	kt_decision_free(&d);
	kt_secret_free(&token);
	kt_config_free(&cfg);
	return rc;
}

/* access_review = yes: the reviewer must also be allowed to create subjectaccessreviews. */
static int selftest_access(const struct kt_config *cfg, const char *conf, unsigned i)
{
	static const char *const args[] = { "--access-selftest", NULL };
	struct kt_helper_result res;
	enum kt_reason r;

	r = kt_spawn_review_args(cfg->helper ? cfg->helper : KT_HELPER_PATH, conf, (int)i, args,
	                         SELFTEST_TOKEN, sizeof(SELFTEST_TOKEN) - 1,
	                         kt_review_deadline_ms(cfg), &res);
	if (r == KT_R_OK)
		printf("ok    %s: reviewer may create subjectaccessreviews (access_review)\n",
		       cfg->servers[i]);
	else if (r == KT_R_ACCESS_DENIED)
		printf("FAIL  %s: the reviewer may not create subjectaccessreviews, needed by "
		       "access_review = yes: bind it to system:auth-delegator%s%s\n", cfg->servers[i],
		       res.detail[0] ? ": " : "", res.detail);
	else
		printf("FAIL  %s: access review check: %s%s%s\n", cfg->servers[i], kt_reason_name(r),
		       res.detail[0] ? ": " : "", res.detail);
	kt_helper_result_free(&res);
	return r == KT_R_OK;
}

/* One server: a review of a junk token must come back as a well-formed "not authenticated". */
static int selftest_server(const struct kt_config *cfg, const char *conf, unsigned i)
{
	struct kt_helper_result res;
	struct kt_identity id = { 0 };
	char server_error[KT_SERVER_ERROR_MAX + 1] = "";
	enum kt_reason r;
	int ok = 0;

	r = kt_spawn_review(cfg->helper ? cfg->helper : KT_HELPER_PATH, conf, (int)i,
	                    SELFTEST_TOKEN, sizeof(SELFTEST_TOKEN) - 1,
	                    kt_review_deadline_ms(cfg), &res);
	if (r == KT_R_OK)
		r = kt_review_parse_reply(res.body.p, res.body.len, cfg->audiences, cfg->n_audiences,
		                          &id, server_error);
	if (r == KT_R_UNAUTHENTICATED) {
		printf("ok    %s: TLS verified, reviewer may create tokenreviews (HTTP %ld)\n",
		       cfg->servers[i], res.http_status);
		ok = 1;
	} else if (r == KT_R_REVIEWER_REJECTED) {
		printf("FAIL  %s: the reviewer credential was refused (HTTP %ld): check the token "
		       "and its binding to system:auth-delegator\n", cfg->servers[i], res.http_status);
	} else if (r == KT_R_OK) {
		printf("FAIL  %s: the server accepted a junk token; do not trust it\n", cfg->servers[i]);
	} else {
		printf("FAIL  %s: %s%s%s\n", cfg->servers[i], kt_reason_name(r),
		       res.detail[0] ? ": " : "", res.detail);
	}
	kt_identity_free(&id);
	kt_helper_result_free(&res);
	if (ok && cfg->access_review)
		ok = selftest_access(cfg, conf, i);
	return ok;
}

/* A bound reviewer token that ends within a day: renewal is not happening (docs/design.md §9.2). */
static void selftest_credential_expiry(const struct kt_config *cfg)
{
	struct kt_cred_claims c;
	char err[256];
	long long left;

	if (kt_cred_read_claims(cfg, &c, err, sizeof(err)) != 1 || !c.has_exp)
		return;   /* a client certificate, a legacy token, or unreadable (the server check says) */
	left = c.exp - (long long)time(NULL);
	if (left <= 0)
		printf("WARN  %s: the reviewer token expired %lld min ago: enroll the host again\n",
		       cfg->reviewer_token_file, -left / 60);
	else if (left < 24 * 3600)
		printf("WARN  %s: the reviewer token expires in %lld h %lld min: is k8stoken-renew.timer "
		       "running? (k8stoken renew)\n", cfg->reviewer_token_file, left / 3600,
		       left % 3600 / 60);
}

static int cmd_selftest(const struct options *o)
{
	struct kt_config cfg;
	unsigned good = 0;
	size_t total;

	if (load_config(o, &cfg) < 0) {
		kt_config_free(&cfg);
		return EXIT_USAGE;
	}
	printf("ok    %s: configuration valid (%zu server%s, %zu audience%s, %zu rule%s)\n", o->conf,
	       cfg.n_servers, cfg.n_servers == 1 ? "" : "s", cfg.n_audiences,
	       cfg.n_audiences == 1 ? "" : "s", cfg.n_rules, cfg.n_rules == 1 ? "" : "s");
	selftest_credential_expiry(&cfg);
	for (unsigned i = 0; i < cfg.n_servers; i++)
		good += (unsigned)selftest_server(&cfg, o->conf, i);
	total = cfg.n_servers;
	printf("%u of %zu servers healthy\n", good, total);
	kt_config_free(&cfg);
	return good == total ? EXIT_ALLOW : EXIT_UNAVAILABLE;
}

static int cmd_cache(const struct options *o, int flush)
{
	struct kt_config cfg;
	struct kt_cache cache;
	struct kt_cache_stats st;
	char err[200], ns[64] = "";
	const char *name = NULL;
	size_t removed = 0;
	int rc = EXIT_UNAVAILABLE;

	if (o->serviceaccount != NULL) {
		const char *slash = strchr(o->serviceaccount, '/');
		if (slash == NULL || slash == o->serviceaccount || slash[1] == '\0' ||
		    (size_t)(slash - o->serviceaccount) >= sizeof(ns)) {
			fprintf(stderr, "k8stoken: --serviceaccount wants NAMESPACE/NAME\n");
			return EXIT_USAGE;
		}
		memcpy(ns, o->serviceaccount, (size_t)(slash - o->serviceaccount));
		name = slash + 1;
	}
	if (load_config(o, &cfg) < 0) {
		kt_config_free(&cfg);
		return EXIT_USAGE;
	}
	if (kt_cache_open(&cache, cfg.cache_dir, KT_TRUSTED_UID, err, sizeof(err)) < 0) {
		fprintf(stderr, "k8stoken: cache unavailable: %s\n", err);
	} else if (flush) {
		if (kt_cache_flush(&cache, name != NULL ? ns : NULL, name, &removed) == 0) {
			printf("removed %zu entries\n", removed);
			rc = EXIT_ALLOW;
		}
	} else if (kt_cache_stats(&cache, &st) == 0) {
		printf("entries: %llu\nhits: %llu\nmisses: %llu\n", st.entries, st.hits, st.misses);
		rc = EXIT_ALLOW;
	}
	kt_cache_close(&cache);
	kt_config_free(&cfg);
	return rc;
}

/* The key table of config.c; tests/module/test_config_keys.py compares the docs with it. */
static int cmd_config_keys(void)
{
	struct kt_config_key k;

	for (size_t i = 0; kt_config_key(i, &k); i++) {
		const char *where = !k.module_arg ? "file" :
				    k.in_file ? "file,argument" : "argument";
		char range[48] = "-";

		if (k.has_range)
			snprintf(range, sizeof(range), "%llu-%llu", k.min, k.max);
		printf("%s\t%s\t%s%s\t%s\t%s\t%s\n", k.key, where, k.kind,
		       k.repeatable ? " (repeatable)" : "", k.def[0] != '\0' ? k.def : "-", range,
		       k.doc);
	}
	return fflush(stdout) == 0 && !ferror(stdout) ? EXIT_ALLOW : EXIT_UNAVAILABLE;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (strcmp(argv[1], "check") == 0) {
		if (parse_options(argc, argv, 2, &o, "chuv") < 0)
			return EXIT_USAGE;
		return cmd_check(&o);
	}
	if (strcmp(argv[1], "selftest") == 0) {
		if (parse_options(argc, argv, 2, &o, "ch") < 0)
			return EXIT_USAGE;
		return cmd_selftest(&o);
	}
	if (strcmp(argv[1], "cache") == 0 && argc >= 3 && strcmp(argv[2], "flush") == 0) {
		if (parse_options(argc, argv, 3, &o, "cs") < 0)
			return EXIT_USAGE;
		return cmd_cache(&o, 1);
	}
	if (strcmp(argv[1], "cache") == 0 && argc >= 3 && strcmp(argv[2], "stats") == 0) {
		if (parse_options(argc, argv, 3, &o, "c") < 0)
			return EXIT_USAGE;
		return cmd_cache(&o, 0);
	}
	if (strcmp(argv[1], "renew") == 0) {
		if (parse_options(argc, argv, 2, &o, "cf") < 0)
			return EXIT_USAGE;
		return kt_renew(o.conf, o.force);
	}
	if (strcmp(argv[1], "enroll") == 0) {
		int rc;

		if (parse_options(argc, argv, 2, &o, "cbfh") < 0)
			return EXIT_USAGE;
		if (o.bundle == NULL) {
			fprintf(stderr, "k8stoken: enroll needs --bundle DIR (made by kubectl k8stoken enroll)\n");
			return EXIT_USAGE;
		}
		rc = kt_enroll_bundle(o.bundle, o.conf, o.force);
		return rc != 0 ? rc : cmd_selftest(&o);
	}
	if (strcmp(argv[1], "config-keys") == 0) {
		if (parse_options(argc, argv, 2, &o, "") < 0)
			return EXIT_USAGE;
		return cmd_config_keys();
	}
	fprintf(stderr, "k8stoken: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
