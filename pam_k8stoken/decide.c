#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "cache.h"
#include "decide.h"
#include "io.h"
#include "review.h"
#include "rules.h"
#include "secure.h"
#include "spawn.h"
#include "token.h"

#define HELPER_SLACK_MS 1000

long kt_review_deadline_ms(const struct kt_config *cfg)
{
	return (long)cfg->timeout * 1000 + HELPER_SLACK_MS;
}

static void fingerprint(const char *token, size_t len, char out[13])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)token, len, md);
	kt_hex(md, 6, out);
	OPENSSL_cleanse(md, sizeof(md));
}

/*
 * Asks the API server through the helper and validates its reply into d->id.
 * *negative_ok tells whether the answer is a definitive "not authenticated" that may
 * be remembered: a well-formed reply without status.error (docs/security.md A02, F10).
 */
static enum kt_reason review(const struct kt_config *cfg, const char *conf_path,
                             const char *token, size_t len, long deadline_ms,
                             struct kt_decision *d, bool *negative_ok)
{
	struct kt_helper_result res;
	enum kt_reason rc;

	d->reviewed = true;
	*negative_ok = false;
	rc = kt_spawn_review(cfg->helper != NULL ? cfg->helper : KT_HELPER_PATH, conf_path, -1,
	                     token, len, deadline_ms, &res);
	d->http_status = res.http_status;
	if (res.server_index < cfg->n_servers && rc != KT_R_HELPER)
		d->server = cfg->servers[res.server_index];
	snprintf(d->detail, sizeof(d->detail), "%s", res.detail);
	if (rc == KT_R_OK) {
		char server_error[KT_SERVER_ERROR_MAX + 1] = "";

		rc = kt_review_parse_reply(res.body, res.body_len, cfg->audiences, cfg->n_audiences,
		                           &d->id, server_error);
		if (rc == KT_R_UNAUTHENTICATED) {
			snprintf(d->detail, sizeof(d->detail), "%s", server_error);
			*negative_ok = server_error[0] == '\0';
		}
	}
	kt_helper_result_free(&res);
	return rc;
}

/* How long a positive review may be reused: cache_ttl, never past the token's exp. */
static long long positive_ttl_ms(const struct kt_config *cfg, const struct kt_token_info *info)
{
	long long ttl = (long long)cfg->cache_ttl * 1000;

	if (info->has_exp) {
		long long left_s = info->exp - (long long)time(NULL);

		/* compared in seconds: (exp - now) * 1000 overflows for an exp near INT64_MAX */
		if (left_s < (long long)cfg->cache_ttl)
			ttl = left_s * 1000;
	}
	return ttl;
}

/* A cached answer: the identity for a positive entry, "not authenticated" for a negative one. */
static bool from_cache(const struct kt_cache *cache, const char *name, struct kt_decision *d,
                       enum kt_reason *rc)
{
	switch (kt_cache_lookup(cache, name, &d->id)) {
	case KT_CACHE_POSITIVE:
		*rc = KT_R_OK;
		break;
	case KT_CACHE_NEGATIVE:
		*rc = KT_R_UNAUTHENTICATED;
		snprintf(d->detail, sizeof(d->detail), "remembered from an earlier review");
		break;
	default:
		return false;
	}
	d->cache = KT_CACHE_USED_HIT;
	return true;
}

static void store(const struct kt_cache *cache, const char *name, const struct kt_identity *id,
                  long long ttl_ms, struct kt_decision *d)
{
	if (kt_cache_store(cache, name, id, ttl_ms) < 0)
		d->cache_store_errno = errno != 0 ? errno : EIO;
}

/*
 * The review, through the cache when one is configured: a hit answers at once; on a
 * miss the lock stripe makes concurrent logins with the same token wait for the first
 * one's result (single flight) instead of each sending a TokenReview. No wait here may
 * outlast the deadline, whatever another process holds (docs/security.md): the stripe
 * is waited for half the budget at most, and the statistics never wait at all and are
 * counted only after the stripe is released.
 */
static enum kt_reason review_cached(const struct kt_config *cfg, const char *conf_path,
                                    const char *token, size_t len,
                                    const struct kt_token_info *info, struct kt_decision *d)
{
	long budget = kt_review_deadline_ms(cfg);
	long long deadline = kt_clock_ms(CLOCK_MONOTONIC) + budget;
	struct kt_cache cache = { .dirfd = -1 };
	char name[KT_CACHE_NAME_LEN + 1] = "";
	enum kt_reason rc;
	bool negative_ok;
	int lockfd = -1;

	if (cfg->cache_ttl == 0 && cfg->negative_cache_ttl == 0)
		return review(cfg, conf_path, token, len, budget, d, &negative_ok);
	/* an entry stored while the clock was wrong must not outlive the token itself */
	if (info->has_exp && info->exp <= (long long)time(NULL)) {
		d->cache = KT_CACHE_USED_MISS;
		return review(cfg, conf_path, token, len, budget, d, &negative_ok);
	}
	if (kt_cache_open(&cache, cfg->cache_dir, 0, d->cache_error, sizeof(d->cache_error)) < 0)
		return review(cfg, conf_path, token, len, budget, d, &negative_ok);
	kt_cache_name(&cache, token, len, cfg->audiences, cfg->n_audiences, cfg->servers,
	              cfg->n_servers, name);
	d->cache = KT_CACHE_USED_MISS;
	if (from_cache(&cache, name, d, &rc))
		goto out;
	/*
	 * Wait for a concurrent review of this token for half the deadline at most: a holder
	 * that hangs must cost one extra review, not the login of every token in its stripe.
	 */
	lockfd = kt_cache_lock(&cache, name, kt_clock_ms(CLOCK_MONOTONIC) + budget / 2);
	/* whoever held the lock may have stored the answer meanwhile */
	if (lockfd >= 0 && from_cache(&cache, name, d, &rc))
		goto out;
	rc = review(cfg, conf_path, token, len, (long)(deadline - kt_clock_ms(CLOCK_MONOTONIC)), d, &negative_ok);
	if (rc == KT_R_OK && cfg->cache_ttl > 0)
		store(&cache, name, &d->id, positive_ttl_ms(cfg, info), d);
	else if (rc == KT_R_UNAUTHENTICATED && negative_ok && cfg->negative_cache_ttl > 0)
		store(&cache, name, NULL, (long long)cfg->negative_cache_ttl * 1000, d);
out:
	kt_cache_unlock(lockfd);
	/* best effort, after the stripe is released: never takes a lock while holding one */
	kt_cache_count(&cache, d->cache == KT_CACHE_USED_HIT);
	kt_cache_close(&cache);
	return rc;
}

enum kt_reason kt_decide(const struct kt_config *cfg, const char *conf_path,
                         const char *token, size_t len, const char *user,
                         struct kt_decision *d)
{
	long long start = kt_clock_ms(CLOCK_MONOTONIC);
	struct kt_token_info info;
	enum kt_reason rc;

	memset(d, 0, sizeof(*d));
	/* First, so that a password meant for the next module is ignored for every account. */
	rc = kt_token_check(token, len, cfg->max_token_size, &info);
	if (rc == KT_R_NOT_JWT && kt_token_shape(token, len) == KT_SHAPE_PARTIAL)
		rc = KT_R_INCOMPLETE_TOKEN;   /* not a password: the end of a token is missing */
	if (rc != KT_R_OK)
		goto out;   /* no fingerprint: the input may be someone's password */
	fingerprint(token, len, d->fingerprint);
	/* A non-expiring token is refused before it is sent anywhere. */
	if (!info.has_exp && !cfg->allow_legacy_tokens) {
		rc = KT_R_LEGACY_TOKEN;
		goto out;
	}
	/* Decided locally, so no token for an impossible account ever leaves the host. */
	if (user != NULL) {
		rc = kt_account_check(cfg, user, &d->local_uid);
		d->account_checked = rc == KT_R_OK || rc == KT_R_UID_POLICY;
		if (rc != KT_R_OK)
			goto out;
	}
	rc = review_cached(cfg, conf_path, token, len, &info, d);
	if (rc != KT_R_OK)
		goto out;
	/* made fresh every time, also on a cache hit: rule changes apply at once */
	if (user != NULL)
		rc = kt_rules_decide(cfg->rules, cfg->n_rules, &d->id, user, &d->rule_line);
out:
	d->elapsed_ms = (long)(kt_clock_ms(CLOCK_MONOTONIC) - start);
	return d->reason = rc;
}

void kt_decision_free(struct kt_decision *d)
{
	kt_identity_free(&d->id);
}
