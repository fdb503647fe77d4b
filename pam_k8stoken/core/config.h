/* Configuration: the file of docs/design.md §3 plus the module arguments, parsed into one struct. */
#ifndef KT_CONFIG_H
#define KT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "number.h"   /* kt_parse_uint, for the values of the configuration */
#include "reason.h"

#define KT_DEFAULT_CONF      "/etc/security/pam_k8stoken.conf"
#define KT_DEFAULT_CACHE_DIR "/run/pam_k8stoken"
#define KT_DEFAULT_PROMPT    "Kubernetes token: "
#define KT_CONF_MAX_SIZE     (64 * 1024)   /* the file is refused beyond this */

enum kt_rule_action { KT_RULE_MAP, KT_RULE_DENY };
/* local_verify: check tokens with the cluster's keys before any TokenReview (jwt_verify.c) */
enum kt_local_verify { KT_VERIFY_AUTO, KT_VERIFY_YES, KT_VERIFY_NO };
enum kt_rule_subject { KT_SUBJECT_SERVICEACCOUNT, KT_SUBJECT_GROUP };

/* One `map` or `deny` line. */
struct kt_rule {
	enum kt_rule_action action;
	enum kt_rule_subject subject;
	char *namespace_glob;   /* SERVICEACCOUNT only */
	char *name_glob;        /* SERVICEACCOUNT only */
	char *group_glob;       /* GROUP only */
	char *user_template;    /* MAP only: literal or with {namespace} / {name} */
	unsigned line;
};

struct kt_config {
	char *path;                 /* file the values came from */

	char **servers;             /* https URLs, in failover order */
	size_t n_servers;
	char *ca_file;
	char *reviewer_token_file;
	char *client_cert_file;
	char *client_key_file;
	char **audiences;
	size_t n_audiences;
	unsigned connect_timeout;   /* seconds per connection attempt */
	unsigned timeout;           /* seconds, whole review, all servers */
	char *cache_dir;
	unsigned cache_ttl;
	unsigned negative_cache_ttl;
	bool allow_legacy_tokens;
	unsigned long min_uid;
	bool allow_root;
	size_t max_token_size;
	char *prompt;
	/* local verification, key set and offline grace (docs/design.md §6.3, §6.5) */
	enum kt_local_verify local_verify;
	char *jwks_file;            /* keys from this file instead of OIDC discovery */
	char *jwks_uri;             /* a jwks_uri on another host that discovery may name */
	unsigned jwks_refresh;      /* seconds between two fetches of the key set */
	char **issuers;             /* accepted iss; none: the discovery document's issuer */
	size_t n_issuers;
	unsigned offline_grace;     /* seconds; 0 = off */

	/* host access from RBAC (access.c, docs/design.md §10) */
	bool access_review;          /* send a SubjectAccessReview after the TokenReview */
	char *access_group;          /* templates: %h host, %u user, %s service, %% */
	char *access_resource;
	char *access_verb;
	char *access_name;
	char *access_subresource;    /* NULL: not sent */
	char *access_namespace;      /* NULL: cluster scope */
	char *host_name;             /* NULL: gethostname() */

	struct kt_rule *rules;
	size_t n_rules;

	/* module arguments only */
	char *helper;               /* NULL: compiled-in KT_HELPER_PATH */
	bool debug;
	bool use_first_pass;
	bool try_first_pass;
	bool ignore_non_token;      /* PAM_IGNORE, not PAM_AUTH_ERR, for a non-token answer */

	/* the caller's, not owned: PAM_SERVICE (k8stoken check --service) for %s */
	const char *service;
};

/* One row of the key table (config.c), as `k8stoken config-keys` prints it. */
struct kt_config_key {
	const char *key;
	const char *kind;           /* url, text, path, yes|no, number, template, name, ... */
	bool repeatable;            /* may be given on several lines */
	bool in_file;               /* "key = value" in the file */
	bool module_arg;            /* a module argument: "key" (kind flag) or "key=value" */
	bool has_range;             /* numbers: min and max */
	unsigned long long min, max;
	char def[64];               /* the default as the file would write it; "" when none */
	const char *doc;            /* one line */
};

/* Describes row i of the table into *out; false past the last row. */
bool kt_config_key(size_t i, struct kt_config_key *out);

/* Zeroes *cfg and sets every default. */
void kt_config_init(struct kt_config *cfg);
/* Frees everything *cfg owns and zeroes it. Safe on an initialised or zeroed struct. */
void kt_config_free(struct kt_config *cfg);

/*
 * Parses module arguments: the rows of the key table (config.c) that may be given as one
 * (conf=, helper=, debug, use_first_pass, try_first_pass, ignore_non_token).
 * *conf_path receives the conf= value (not owned) or KT_DEFAULT_CONF.
 * Unknown or malformed arguments: KT_R_CONFIG with a message in err.
 */
enum kt_reason kt_config_parse_args(struct kt_config *cfg, int argc, const char **argv,
                                        const char **conf_path, char *err, size_t errlen);

/*
 * Parses a whole config file held in memory; `name` is used in messages only.
 * On error returns KT_R_CONFIG and writes "NAME:LINE: what is wrong" to err.
 * Also checks the cross-key rules (required keys, one credential kind, timeouts).
 */
enum kt_reason kt_config_parse_buffer(struct kt_config *cfg, const char *name,
                           const char *buf, size_t len, char *err, size_t errlen);

/*
 * Opens `path` safely (O_NOFOLLOW, regular file, owned by `owner`, not writable by
 * group/other, at most KT_CONF_MAX_SIZE) and parses it. owner is 0 in production.
 */
enum kt_reason kt_config_load(struct kt_config *cfg, const char *path, uid_t owner,
                   char *err, size_t errlen);

#endif
