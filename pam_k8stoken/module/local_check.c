/* Keys at hand, local verification, offline grace: the module's side (local_check.h). */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "breaker.h"
#include "cache.h"
#include "decide.h"
#include "io.h"
#include "jwks.h"
#include "local_check.h"
#include "offline.h"
#include "private_file.h"
#include "secure.h"
#include "spawn.h"
#include "trusted_owner.h"

/* The keys one login verifies with. */
struct keys {
	struct kt_jwks set;
	char *const *issuers;
	size_t n_issuers;
	char *issuer_storage[1];
	char issuer[KT_JWKS_ISSUER_MAX + 1];
	long long age_ms;
};

/* One message for every refusal: the file's checks are named together in it. */
static const struct kt_file_words jwks_file_words[KT_FILE__COUNT] = {
	[KT_FILE_OPEN]  = { "jwks_file ", " cannot be opened", KT_DETAIL_ERRNO },
	[KT_FILE_TYPE]  = { "jwks_file ", " must be a root-owned regular file, not writable by "
	                    "group or others, at most", KT_DETAIL_MAX },
	[KT_FILE_READ]  = { "jwks_file ", " cannot be read", KT_DETAIL_NONE },
	[KT_FILE_NOMEM] = { "jwks_file ", " cannot be read", KT_DETAIL_NONE },
};

static const struct kt_file_policy jwks_file_policy = {
	.owner_rule = KT_OWNER_UID, .owner = KT_TRUSTED_UID, .forbidden = S_IWGRP | S_IWOTH,
	.max_size = KT_JWKS_MAX, .words = jwks_file_words,
};

/* jwks_file: root's, not writable by group or others, at most KT_JWKS_MAX; its age is its mtime's. */
static bool keys_from_file(const struct kt_config *cfg, const char *kid, struct keys *k,
                           char *why, size_t whylen)
{
	struct kt_secret doc;
	char perr[160];
	struct stat st;
	bool ok = false;

	if (kt_read_private_file_at(AT_FDCWD, cfg->jwks_file, &jwks_file_policy, &doc, &st, why,
	                            whylen) != KT_FILE_OK)
		return false;
	if (kt_jwks_parse(doc.p, doc.len, kid, &k->set, perr, sizeof(perr)) != KT_R_OK) {
		snprintf(why, whylen, "jwks_file %s refused: %s", cfg->jwks_file, perr);
		goto out;
	}
	k->issuers = cfg->issuers;
	k->n_issuers = cfg->n_issuers;
	k->age_ms = ((long long)time(NULL) - (long long)st.st_mtime) * 1000;
	ok = true;
out:
	kt_secret_free(&doc);
	return ok;
}

static bool has_kid(const struct kt_jwks *set, const char *kid)
{
	for (size_t i = 0; i < set->n; i++)
		if (kid == NULL || strcmp(set->keys[i].kid, kid) == 0)
			return true;
	return false;
}

/* The stored key set, parsed for kid; false when there is none usable. */
static bool keys_from_cache(const struct kt_config *cfg, const struct kt_cache *c,
                            const char *kid, struct keys *k)
{
	struct kt_jwks_stored st;
	char why[160], source[KT_JWKS_SOURCE_SIZE];
	bool ok;

	kt_jwks_free(&k->set);
	kt_jwks_source(cfg, source);
	if (kt_jwks_load(c, source, &st) < 0)
		return false;
	ok = kt_jwks_parse(st.document, st.document_len, kid, &k->set, why, sizeof(why)) == KT_R_OK;
	if (ok) {
		k->age_ms = kt_clock_ms(CLOCK_BOOTTIME) - st.fetched_ms;
		memcpy(k->issuer, st.issuer, sizeof(k->issuer));
		k->issuer_storage[0] = k->issuer;
		k->issuers = cfg->n_issuers > 0 ? cfg->issuers : k->issuer_storage;
		k->n_issuers = cfg->n_issuers > 0 ? cfg->n_issuers : 1;
	}
	kt_jwks_stored_free(&st);
	return ok;
}

/* Runs the helper's fetch (k8stoken-review --jwks); its failure goes to why. */
static bool fetch(const struct kt_config *cfg, const char *conf_path, long deadline_ms,
                  char *why, size_t whylen)
{
	static const char *const args[] = { "--jwks", NULL };
	struct kt_helper_result res;
	enum kt_reason rc;

	rc = kt_spawn_review_args(cfg->helper != NULL ? cfg->helper : KT_HELPER_PATH, conf_path, -1,
	                          args, "", 0, deadline_ms, &res);
	if (rc != KT_R_OK)
		snprintf(why, whylen, "the key set cannot be fetched: %s%s%.200s", kt_reason_name(rc),
		     res.detail[0] != '\0' ? ": " : "", res.detail);
	kt_helper_result_free(&res);
	return rc == KT_R_OK;
}

/*
 * The stored key set, fetched first when missing, older than jwks_refresh or without kid,
 * if the host-wide slot allows (one fetch a minute; a concurrent fetch is waited for).
 */
static bool keys_fetched(const struct kt_config *cfg, const char *conf_path, const char *kid,
                         long deadline_ms, struct keys *k, struct kt_local_check *lc,
                         char *why, size_t whylen)
{
	struct kt_cache c = { .dirfd = -1 };
	bool have;
	int lockfd;

	if (kt_cache_open(&c, cfg->cache_dir, KT_TRUSTED_UID, why, whylen) < 0)
		return false;
	have = keys_from_cache(cfg, &c, kid, k);
	if (!have || k->age_ms > (long long)cfg->jwks_refresh * 1000 || !has_kid(&k->set, kid)) {
		char source[KT_JWKS_SOURCE_SIZE];

		kt_jwks_source(cfg, source);
		if (kt_jwks_fetch_slot(&c, source, kt_clock_ms(CLOCK_MONOTONIC) + deadline_ms / 2,
		                       &lockfd)) {
			lc->fetched = true;
			if (!fetch(cfg, conf_path, deadline_ms, why, whylen))
				snprintf(lc->warning, sizeof(lc->warning), "%s", why);
			kt_cache_unlock(lockfd);
		}
		/* ours or another process's fetch may have stored a newer set; an old one still serves */
		if (keys_from_cache(cfg, &c, kid, k))
			have = true;
		else if (have)
			have = false;   /* the old set vanished meanwhile */
	}
	if (!have && why[0] == '\0')
		snprintf(why, whylen, "no key set in %s yet (the next fetch within a minute)", cfg->cache_dir);
	kt_cache_close(&c);
	return have;
}

enum kt_reason kt_local_check(const struct kt_config *cfg, const char *conf_path,
                              const char *token, size_t len, bool legacy, long deadline_ms,
                              struct kt_local_check *lc, char *detail, size_t detail_len)
{
	struct kt_token_parts parts;
	struct keys k;
	char kid[KT_JWKS_KID_MAX + 1], why[256] = "";
	bool bad = false, named, have;
	enum kt_reason rc;

	memset(lc, 0, sizeof(*lc));
	memset(&k, 0, sizeof(k));
	if (cfg->local_verify == KT_VERIFY_NO)
		return KT_R_OK;
	rc = kt_token_decode(token, len, &parts);
	if (rc != KT_R_OK)
		return rc;
	named = kt_jwt_kid(&parts, kid, sizeof(kid), &bad);
	if (bad) {
		kt_token_parts_free(&parts);
		snprintf(detail, detail_len, "kid is not a key id of this cluster");
		return KT_R_UNKNOWN_KEY;
	}
	if (cfg->jwks_file != NULL)
		have = keys_from_file(cfg, named ? kid : NULL, &k, why, sizeof(why));
	else
		have = keys_fetched(cfg, conf_path, named ? kid : NULL, deadline_ms, &k, lc, why,
		                    sizeof(why));
	if (!have) {
		kt_token_parts_free(&parts);
		kt_jwks_free(&k.set);
		if (cfg->local_verify == KT_VERIFY_YES) {
			snprintf(detail, detail_len, "local_verify = yes: %s", why);
			return KT_R_NO_KEYS;
		}
		if (cfg->jwks_file != NULL)
			snprintf(lc->warning, sizeof(lc->warning), "%s", why);
		return KT_R_OK;   /* auto: reviewed as without local verification */
	}
	rc = kt_jwt_check(token, &parts, &k.set, k.issuers, k.n_issuers, cfg->audiences,
	                  cfg->n_audiences, legacy, (long long)time(NULL), &lc->claims, detail,
	                  detail_len);
	lc->verified = rc == KT_R_OK;
	lc->keys_age_ms = k.age_ms;
	kt_token_parts_free(&parts);
	kt_jwks_free(&k.set);
	return rc;
}

bool kt_review_blocked(const struct kt_config *cfg)
{
	struct kt_cache c = { .dirfd = -1 };
	bool blocked;

	if (kt_breaker_open_cache(&c, cfg->cache_dir) < 0)
		return false;   /* no shared state: every server is tried */
	blocked = kt_breaker_all_open(&c, cfg);
	kt_cache_close(&c);
	return blocked;
}

void kt_offline_after_review(const struct kt_config *cfg, const struct kt_identity *id)
{
	struct kt_cache c = { .dirfd = -1 };
	char err[160];

	if (cfg->offline_grace == 0 || kt_cache_open(&c, cfg->cache_dir, KT_TRUSTED_UID, err, sizeof(err)) < 0)
		return;
	kt_offline_remember(&c, cfg, id);   /* best effort: a missing record only denies grace */
	kt_cache_close(&c);
}

/* An outage, not an answer: transport, timeout, 429/5xx, every circuit open. */
static bool is_outage(enum kt_reason rc, long http_status)
{
	return rc == KT_R_CIRCUIT_OPEN || kt_breaker_is_failure(rc, http_status);
}

static bool refuse_grace(struct kt_decision *d, const char *why)
{
	size_t n = strlen(d->detail);

	snprintf(d->detail + n, sizeof(d->detail) - n, "%sno offline grace: %s", n ? "; " : "", why);
	return false;
}

bool kt_offline_grace(const struct kt_config *cfg, const struct kt_local_check *lc,
                      enum kt_reason rc, struct kt_decision *d)
{
	struct kt_cache c = { .dirfd = -1 };
	struct kt_identity id;
	char err[160];
	bool all_failing;

	if (cfg->offline_grace == 0 || !is_outage(rc, d->http_status))
		return false;
	if (!lc->verified)
		return refuse_grace(d, "the token was not verified locally");
	if (lc->keys_age_ms > (long long)cfg->offline_grace * 1000)
		return refuse_grace(d, "the keys are older than offline_grace");
	if (!lc->claims.has_exp || lc->claims.exp <= (long long)time(NULL))
		return refuse_grace(d, "the token has expired");
	if (kt_cache_open(&c, cfg->cache_dir, KT_TRUSTED_UID, err, sizeof(err)) < 0)
		return refuse_grace(d, "no cache directory");
	all_failing = kt_breaker_all_failing(&c, cfg);
	if (all_failing && kt_offline_recall(&c, cfg, lc->claims.sa_uid, &id) == 0) {
		kt_cache_close(&c);
		if (strcmp(id.username, lc->claims.sub) != 0) {
			kt_identity_free(&id);
			return refuse_grace(d, "the remembered identity is not the token's");
		}
		kt_identity_free(&d->id);
		d->id = id;
		return true;
	}
	kt_cache_close(&c);
	return refuse_grace(d, all_failing ? "no positive review of this ServiceAccount within "
	                                     "offline_grace" : "a server has not failed");
}
