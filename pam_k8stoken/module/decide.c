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
#include "local_check.h"
#include "review.h"
#include "rules.h"
#include "secure.h"
#include "spawn.h"
#include "token.h"
#include "trusted_owner.h"

#define HELPER_SLACK_MS 1000

long kt_review_deadline_ms(const struct kt_config *cfg)
{
	return (long)cfg->timeout * 1000 + HELPER_SLACK_MS;
}

static void fingerprint(const char *token, size_t len, char out[13])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	if (SHA256((const unsigned char *)token, len, md) == NULL) {
		out[0] = '\0';   /* no fingerprint in the log line rather than a wrong one */
		return;
	}
	kt_hex(md, 6, out);
	OPENSSL_cleanse(md, sizeof(md));
}

/*
 * The helper stopped a reviewed login at the access review or the rules: its body is
 * still the reviewed identity (for the log line); the helper's reason stands.
 */
static enum kt_reason stopped_with_identity(const struct kt_config *cfg,
                                            const struct kt_helper_result *res,
                                            struct kt_decision *d)
{
	enum kt_reason rc = kt_review_parse_reply(res->body.p, res->body.len, cfg->audiences,
	                                          cfg->n_audiences, &d->id, NULL);

	return rc == KT_R_OK ? res->reason : rc;
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
	/* every server in its backoff: unavailable in milliseconds, no helper (docs/design.md §6.4) */
	if (kt_review_blocked(cfg)) {
		snprintf(d->detail, sizeof(d->detail), "every server is in its backoff after failing");
		return KT_R_CIRCUIT_OPEN;
	}
	rc = kt_spawn_review_args(cfg->helper != NULL ? cfg->helper : KT_HELPER_PATH, conf_path, -1,
	                          d->access_wanted ? d->access_args : NULL, token, len,
	                          deadline_ms, &res);
	d->http_status = res.http_status;
	if (res.server_index < cfg->n_servers && rc != KT_R_HELPER)
		d->server = cfg->servers[res.server_index];
	snprintf(d->detail, sizeof(d->detail), "%s", res.detail);
	if (rc != KT_R_OK && d->access_wanted && kt_access_reason_has_identity(rc) &&
	    res.body.len > 0)
		rc = stopped_with_identity(cfg, &res, d);
	if (rc == KT_R_OK) {
		char server_error[KT_SERVER_ERROR_MAX + 1] = "";

		rc = kt_review_parse_reply(res.body.p, res.body.len, cfg->audiences, cfg->n_audiences,
		                           &d->id, server_error);
		if (rc == KT_R_UNAUTHENTICATED) {
			/* escaped by the parser; the decision holds the text (the log escapes it) */
			kt_unescape(server_error, d->detail, sizeof(d->detail));
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
 * The cache entry's name. With an access review the rendered attributes join the
 * server list in the name: an entry then also says "RBAC allowed exactly this" and
 * is stored only when it did (docs/design.md §10); server URLs all start with https://,
 * so no server list can produce the same name.
 */
static void entry_name(const struct kt_cache *cache, const struct kt_config *cfg,
                       const char *token, size_t len, const struct kt_decision *d,
                       char name[KT_CACHE_NAME_LEN + 1])
{
	char access[7 * (KT_ACCESS_VALUE_MAX + 16)] = "access ";
	char *servers[9];   /* config.c allows 8 servers */

	if (!d->access_wanted || cfg->n_servers >= sizeof(servers) / sizeof(servers[0])) {
		kt_cache_name(cache, token, len, cfg->audiences, cfg->n_audiences, cfg->servers,
		              cfg->n_servers, name);
		return;
	}
	memcpy(servers, cfg->servers, cfg->n_servers * sizeof(servers[0]));
	kt_access_describe(&d->access_attrs, access + 7, sizeof(access) - 7);
	servers[cfg->n_servers] = access;
	kt_cache_name(cache, token, len, cfg->audiences, cfg->n_audiences, servers,
	              cfg->n_servers + 1, name);
}

/* Renders what the access review will ask; the helper gets the same account and service. */
static enum kt_reason want_access(const struct kt_config *cfg, const char *user,
                                  struct kt_decision *d)
{
	enum kt_reason rc = kt_access_render(cfg, user, cfg->service, &d->access_attrs, d->detail,
	                                     sizeof(d->detail));

	if (rc != KT_R_OK)
		return rc;
	d->access_wanted = true;
	d->access_args[0] = "--access";
	d->access_args[1] = user;
	d->access_args[2] = cfg->service != NULL ? cfg->service : "";
	d->access_args[3] = NULL;
	return KT_R_OK;
}

static enum kt_access_use access_outcome(const struct kt_decision *d, enum kt_reason rc)
{
	if (!d->access_wanted)
		return d->access;
	return rc == KT_R_OK ? KT_ACCESS_ALLOWED : rc == KT_R_ACCESS_DENIED ? KT_ACCESS_DENIED
	                                                                 : KT_ACCESS_NONE;
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
	if (kt_cache_open(&cache, cfg->cache_dir, KT_TRUSTED_UID, d->cache_error, sizeof(d->cache_error)) < 0)
		return review(cfg, conf_path, token, len, budget, d, &negative_ok);
	entry_name(&cache, cfg, token, len, d, name);
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
	d->access = cfg->access_review ? KT_ACCESS_NONE : KT_ACCESS_OFF;
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
	/* forged, expired, misdirected tokens die here, before any request (docs/design.md §6.3) */
	rc = kt_local_check(cfg, conf_path, token, len, info.legacy, kt_review_deadline_ms(cfg),
	                    &d->local, d->detail, sizeof(d->detail));
	if (rc != KT_R_OK)
		goto out;
	if (user != NULL && cfg->access_review && (rc = want_access(cfg, user, d)) != KT_R_OK)
		goto out;
	rc = review_cached(cfg, conf_path, token, len, &info, d);
	d->access = access_outcome(d, rc);
	if (rc == KT_R_OK && d->cache != KT_CACHE_USED_HIT)
		kt_offline_after_review(cfg, &d->id);
	/* the API server is down: offline grace may vouch, and the rules decide (§6.5) */
	if (rc != KT_R_OK && user != NULL && kt_offline_grace(cfg, &d->local, rc, d)) {
		rc = kt_rules_decide(cfg->rules, cfg->n_rules, &d->id, user, &d->rule_line);
		rc = rc == KT_R_OK ? KT_R_OFFLINE_GRACE : rc;
		goto out;
	}
	if (rc != KT_R_OK && !(d->access_wanted && kt_access_reason_has_identity(rc) &&
	                       d->id.username != NULL))
		goto out;
	/* made fresh every time, also on a cache hit: rule changes apply at once */
	if (user != NULL) {
		enum kt_reason by_rules = kt_rules_decide(cfg->rules, cfg->n_rules, &d->id, user,
		                                          &d->rule_line);

		/* the rules speak first (the helper asked RBAC only after them) */
		rc = by_rules != KT_R_OK ? by_rules : rc;
	}
out:
	d->elapsed_ms = (long)(kt_clock_ms(CLOCK_MONOTONIC) - start);
	return d->reason = rc;
}

void kt_decision_free(struct kt_decision *d)
{
	kt_identity_free(&d->id);
}
