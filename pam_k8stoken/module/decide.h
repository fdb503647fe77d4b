/*
 * One decision, shared by the PAM module and `k8stoken check`: may the holder of
 * this token act as this local account? No PAM calls in here.
 */
#ifndef KT_DECIDE_H
#define KT_DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "access.h"
#include "config.h"
#include "identity.h"
#include "local_check.h"
#include "reason.h"

enum kt_cache_use {
	KT_CACHE_OFF,                /* disabled in the config, or unusable (see cache_error) */
	KT_CACHE_USED_MISS,          /* looked up, not found: a review was sent */
	KT_CACHE_USED_HIT,           /* answered from the cache: nothing was sent */
};

/* The host access review of this login (docs/design.md §10), for the log line. */
enum kt_access_use {
	KT_ACCESS_OFF,               /* access_review = no */
	KT_ACCESS_NONE,              /* on, but no answer: the login ended before it, or it failed */
	KT_ACCESS_ALLOWED,           /* RBAC allows (now, or within cache_ttl from the cache) */
	KT_ACCESS_DENIED,            /* RBAC does not allow: reason access_denied */
};

struct kt_decision {
	enum kt_reason reason;
	struct kt_identity id;       /* filled when the API server vouched for a ServiceAccount */
	bool account_checked;        /* user is a real local account name (safe to log) */
	bool reviewed;               /* a TokenReview was attempted */
	enum kt_cache_use cache;
	char cache_error[160];       /* why a wanted cache could not be used, "" if it could */
	int cache_store_errno;       /* why the result could not be stored, 0 if it was or need not be */
	const char *server;          /* URL that gave the last answer (owned by the config) */
	long http_status;
	char detail[256];            /* text, escaped by its writers: server status.error, ... */
	unsigned rule_line;          /* rule that decided, 0 if none */
	uid_t local_uid;
	long elapsed_ms;
	char fingerprint[13];        /* 12 hex chars identifying the token in logs */
	enum kt_access_use access;
	bool access_wanted;          /* access_review = yes and a local account to review */
	struct kt_access_attrs access_attrs;   /* what the SubjectAccessReview asks, when wanted */
	const char *access_args[4];  /* "--access", user, service, NULL: the helper's arguments */
	struct kt_local_check local; /* local verification with the cluster's keys (§6.3) */
};

/* Wall time the module grants the helper: the configured timeout plus start-up slack. */
long kt_review_deadline_ms(const struct kt_config *cfg);

/*
 * Runs the whole decision for token[0..len) and local account user. conf_path is
 * handed to the helper, which reads the same file. d->reason is the outcome;
 * release d with kt_decision_free. With user NULL (k8stoken check without --user)
 * the account check and the rules are skipped: only the token is judged.
 */
enum kt_reason kt_decide(const struct kt_config *cfg, const char *conf_path,
                         const char *token, size_t len, const char *user,
                         struct kt_decision *d);


void kt_decision_free(struct kt_decision *d);

#endif
