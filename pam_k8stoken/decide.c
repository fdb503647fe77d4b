#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "decide.h"
#include "review.h"
#include "rules.h"
#include "spawn.h"
#include "token.h"

#define HELPER_SLACK_MS 1000

long kt_review_deadline_ms(const struct kt_config *cfg)
{
	return (long)cfg->timeout * 1000 + HELPER_SLACK_MS;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fingerprint(const char *token, size_t len, char out[13])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)token, len, md);
	for (int i = 0; i < 6; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[12] = '\0';
	OPENSSL_cleanse(md, sizeof(md));
}

/* Asks the API server through the helper and validates its reply into d->id. */
static enum kt_reason review(const struct kt_config *cfg, const char *conf_path,
                             const char *token, size_t len, struct kt_decision *d)
{
	struct kt_helper_result res;
	enum kt_reason rc;

	d->reviewed = true;
	rc = kt_spawn_review(cfg->helper != NULL ? cfg->helper : KT_HELPER_PATH, conf_path, -1,
	                     token, len, kt_review_deadline_ms(cfg), &res);
	d->http_status = res.http_status;
	if (res.server_index < cfg->n_servers && rc != KT_R_HELPER)
		d->server = cfg->servers[res.server_index];
	snprintf(d->detail, sizeof(d->detail), "%s", res.detail);
	if (rc == KT_R_OK) {
		char server_error[KT_SERVER_ERROR_MAX + 1] = "";

		rc = kt_review_parse_reply(res.body, res.body_len, cfg->audiences, cfg->n_audiences,
		                           &d->id, server_error);
		if (rc == KT_R_UNAUTHENTICATED)
			snprintf(d->detail, sizeof(d->detail), "%s", server_error);
	}
	kt_helper_result_free(&res);
	return rc;
}

enum kt_reason kt_decide(const struct kt_config *cfg, const char *conf_path,
                         const char *token, size_t len, const char *user,
                         struct kt_decision *d)
{
	long long start = now_ms();
	struct kt_token_info info;
	enum kt_reason rc;

	memset(d, 0, sizeof(*d));
	/* First, so that a password meant for the next module is ignored for every account. */
	rc = kt_token_check(token, len, cfg->max_token_size, &info);
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
	rc = review(cfg, conf_path, token, len, d);
	if (rc != KT_R_OK)
		goto out;
	if (user != NULL)
		rc = kt_rules_decide(cfg->rules, cfg->n_rules, &d->id, user, &d->rule_line);
out:
	d->elapsed_ms = (long)(now_ms() - start);
	return d->reason = rc;
}

void kt_decision_free(struct kt_decision *d)
{
	kt_identity_free(&d->id);
}
