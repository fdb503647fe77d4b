/*
 * The module's side of local verification and offline grace (docs/design.md §6.3, §6.5):
 * finds the cluster's keys (jwks_file, or the key set in the cache directory, fetched by
 * the helper when missing, older than jwks_refresh, or lacking the token's kid: at most
 * once a minute host-wide), checks the token with them, and decides offline grace.
 */
#ifndef KT_LOCAL_CHECK_H
#define KT_LOCAL_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "jwt_verify.h"
#include "reason.h"
#include "token.h"

struct kt_decision;

struct kt_local_check {
	bool verified;                     /* keys were at hand and the token passed */
	long long keys_age_ms;             /* age of the keys that verified it */
	struct kt_verified_claims claims;
	bool fetched;                      /* this login ran the helper to fetch the keys */
	char warning[256];                 /* local_verify = auto without keys: logged once */
};

/*
 * KT_R_OK when the token may be reviewed (verified, or local_verify = auto without keys,
 * or no); a refusal reason from kt_jwt_check; KT_R_NO_KEYS for local_verify = yes without
 * keys. detail receives why for a refusal.
 */
enum kt_reason kt_local_check(const struct kt_config *cfg, const char *conf_path,
                              const char *token, size_t len, bool legacy, long deadline_ms,
                              struct kt_local_check *lc, char *detail, size_t detail_len);

/* True when no review can start: every server is in its backoff (breaker.h). */
bool kt_review_blocked(const struct kt_config *cfg);

/*
 * After a positive TokenReview (not a cache hit): remembers the identity for offline grace.
 * After an outage (rc): true when offline grace lets the token in; d->id then holds the
 * remembered identity (the caller applies the rules); otherwise d->detail says why not.
 */
void kt_offline_after_review(const struct kt_config *cfg, const struct kt_identity *id);
bool kt_offline_grace(const struct kt_config *cfg, const struct kt_local_check *lc,
                      enum kt_reason rc, struct kt_decision *d);

#endif
