#include <errno.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "auth.h"
#include "config.h"
#include "decide.h"
#include "logline.h"
#include "prompt.h"
#include "secure.h"
#include "trusted_owner.h"

/* pam_set_data key: the local user this module authenticated in this transaction. */
#define DATA_AUTHENTICATED "pam_k8stoken_authenticated_user"
#define FAIL_DELAY_USEC 2000000u

/* pam_sm_authenticate's answer for each reason: the pam column of reason_list.h. */
static const int pam_codes[KT_R__COUNT] = {
#define KT_REASON(id, name, class, pam, log, tool_exit, what) [KT_R_##id] = pam,
#include "reason_list.h"
#undef KT_REASON
};

/*
 * A non-token answer (e.g. a password meant for the next module) is refused unless the
 * stack asked for it to be ignored (module argument ignore_non_token): under
 * "auth required", PAM_IGNORE would let whatever the user types skip this module.
 */
static int pam_code(enum kt_reason r, bool ignore_non_token)
{
	if ((unsigned)r >= KT_R__COUNT)
		return PAM_SYSTEM_ERR;
	if (r == KT_R_NOT_JWT && ignore_non_token)
		return PAM_IGNORE;
	return pam_codes[r];
}

/*
 * Gets the token: the previous module's PAM_AUTHTOK with use_first_pass/try_first_pass,
 * else the prompt, in parts when needed. The token is never stored as PAM_AUTHTOK by
 * this module. *owned is what the caller must release (kt_secret_free).
 */
static int get_token(pam_handle_t *pamh, const struct kt_config *cfg, const char **token,
                     struct kt_secret *owned)
{
	const void *item = NULL;
	int rc;

	*owned = (struct kt_secret){ 0 };
	*token = NULL;
	if (cfg->use_first_pass || cfg->try_first_pass) {
		rc = pam_get_item(pamh, PAM_AUTHTOK, &item);
		if (rc == PAM_SUCCESS && item != NULL) {
			*token = item;
			return PAM_SUCCESS;
		}
		if (cfg->use_first_pass)
			return PAM_AUTH_ERR;
	}
	rc = kt_prompt_token(pamh, cfg, owned);
	if (rc == PAM_CONV_AGAIN)
		return PAM_INCOMPLETE;
	*token = owned->p;
	return rc;
}

static int put_env(pam_handle_t *pamh, const char *name, const char *value)
{
	char buf[4096];
	int n;

	if (value == NULL)
		return PAM_SUCCESS;
	n = snprintf(buf, sizeof(buf), "%s=%s", name, value);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return PAM_BUF_ERR;
	return pam_putenv(pamh, buf);
}

static const char *const exported[] = {
	"K8S_SERVICEACCOUNT", "K8S_USERNAME", "K8S_UID", "K8S_GROUPS", "K8S_CREDENTIAL_ID",
	"K8S_POD_NAME", "K8S_OFFLINE",
};

/* After a failed export: no half of an identity is left for the session. */
static void unexport_identity(pam_handle_t *pamh)
{
	for (size_t i = 0; i < sizeof(exported) / sizeof(exported[0]); i++)
		if (pam_getenv(pamh, exported[i]) != NULL)
			pam_putenv(pamh, exported[i]);   /* a name without "=" removes it */
}

static int export_identity(pam_handle_t *pamh, const struct kt_identity *id, char *why,
                           size_t whylen)
{
	char sa[512], groups[3072];
	size_t pos = 0;
	int rc;

	snprintf(sa, sizeof(sa), "%s/%s", id->sa_namespace, id->sa_name);
	groups[0] = '\0';
	for (size_t i = 0; i < id->n_groups; i++) {
		int n = snprintf(groups + pos, sizeof(groups) - pos, "%s%s", i ? "," : "", id->groups[i]);
		if (n < 0 || (size_t)n >= sizeof(groups) - pos) {
			snprintf(why, whylen, "K8S_GROUPS would be longer than %zu bytes",
			         sizeof(groups) - 1);
			return PAM_BUF_ERR;
		}
		pos += (size_t)n;
	}
	snprintf(why, whylen, "cannot set the K8S_* variables");
	rc = put_env(pamh, "K8S_SERVICEACCOUNT", sa);
	if (rc == PAM_SUCCESS)
		rc = put_env(pamh, "K8S_USERNAME", id->username);
	if (rc == PAM_SUCCESS)
		rc = put_env(pamh, "K8S_UID", id->uid);
	if (rc == PAM_SUCCESS)
		rc = put_env(pamh, "K8S_GROUPS", groups);
	if (rc == PAM_SUCCESS)
		rc = put_env(pamh, "K8S_CREDENTIAL_ID", id->credential_id);
	if (rc == PAM_SUCCESS)
		rc = put_env(pamh, "K8S_POD_NAME", id->pod_name);
	return rc;
}

static void free_string(pam_handle_t *pamh, void *data, int error_status)
{
	(void)pamh;
	(void)error_status;
	free(data);
}

static int remember_user(pam_handle_t *pamh, const char *user)
{
	char *copy = strdup(user);

	int rc;

	if (copy == NULL)
		return PAM_BUF_ERR;
	rc = pam_set_data(pamh, DATA_AUTHENTICATED, copy, free_string);
	if (rc != PAM_SUCCESS)
		free(copy);   /* libpam calls the cleanup only for data it has taken */
	return rc;
}

/*
 * Exports K8S_* and remembers the user for the account phase. On failure the decision
 * becomes a denial (nomem, PAM_BUF_ERR) with the cause in its detail.
 */
static int record_session(pam_handle_t *pamh, const char *user, struct kt_decision *d)
{
	char why[128];
	int rc = export_identity(pamh, &d->id, why, sizeof(why));

	/* let in by offline grace: the session may want to know (docs/design.md §6.5) */
	if (rc == PAM_SUCCESS && d->reason == KT_R_OFFLINE_GRACE)
		rc = put_env(pamh, "K8S_OFFLINE", "1");

	if (rc == PAM_SUCCESS) {
		rc = remember_user(pamh, user);
		snprintf(why, sizeof(why), "cannot remember the user for the account phase");
	}
	if (rc != PAM_SUCCESS) {
		unexport_identity(pamh);
		d->reason = KT_R_NOMEM;
		snprintf(d->detail, sizeof(d->detail), "%s: %s", why, pam_strerror(pamh, rc));
		rc = PAM_BUF_ERR;
	}
	return rc;
}

/*
 * Once the token's buffers are wiped, pieces of it remain where no free() reaches: glibc's
 * string functions leave them in vector registers, which lazy symbol binding and signal
 * delivery spill onto the stack. Zeroes those registers, then the stack below this frame
 * (docs/security.md: no token residue in the host process). Uninstrumented, so that ASan
 * keeps the array on the real stack.
 */
__attribute__((noinline, no_sanitize_address))
static void scrub_token_traces(void)
{
	char area[16384];

#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		__asm__ __volatile__(
			"vpxord %%zmm16, %%zmm16, %%zmm16\n\tvpxord %%zmm17, %%zmm17, %%zmm17\n\t"
			"vpxord %%zmm18, %%zmm18, %%zmm18\n\tvpxord %%zmm19, %%zmm19, %%zmm19\n\t"
			"vpxord %%zmm20, %%zmm20, %%zmm20\n\tvpxord %%zmm21, %%zmm21, %%zmm21\n\t"
			"vpxord %%zmm22, %%zmm22, %%zmm22\n\tvpxord %%zmm23, %%zmm23, %%zmm23\n\t"
			"vpxord %%zmm24, %%zmm24, %%zmm24\n\tvpxord %%zmm25, %%zmm25, %%zmm25\n\t"
			"vpxord %%zmm26, %%zmm26, %%zmm26\n\tvpxord %%zmm27, %%zmm27, %%zmm27\n\t"
			"vpxord %%zmm28, %%zmm28, %%zmm28\n\tvpxord %%zmm29, %%zmm29, %%zmm29\n\t"
			"vpxord %%zmm30, %%zmm30, %%zmm30\n\tvpxord %%zmm31, %%zmm31, %%zmm31" : : : "memory");
	if (__builtin_cpu_supports("avx"))
		__asm__ __volatile__("vzeroall" : : : "memory");
	else
		__asm__ __volatile__(
			"pxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\tpxor %%xmm2, %%xmm2\n\t"
			"pxor %%xmm3, %%xmm3\n\tpxor %%xmm4, %%xmm4\n\tpxor %%xmm5, %%xmm5\n\t"
			"pxor %%xmm6, %%xmm6\n\tpxor %%xmm7, %%xmm7\n\tpxor %%xmm8, %%xmm8\n\t"
			"pxor %%xmm9, %%xmm9\n\tpxor %%xmm10, %%xmm10\n\tpxor %%xmm11, %%xmm11\n\t"
			"pxor %%xmm12, %%xmm12\n\tpxor %%xmm13, %%xmm13\n\tpxor %%xmm14, %%xmm14\n\t"
			"pxor %%xmm15, %%xmm15" : : : "memory");
#endif
	explicit_bzero(area, sizeof(area));
	__asm__ __volatile__("" : : "r"(area) : "memory");
}

int kt_auth_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct kt_config cfg;
	struct kt_decision d;
	const char *conf_path = NULL, *user = NULL, *token = NULL;
	const void *rhost = NULL, *service = NULL;
	struct kt_secret owned = { 0 };
	char err[512], line[1024], esc[4 * sizeof(d.local.warning)];
	int rc;

	(void)flags;
	memset(&d, 0, sizeof(d));
	kt_config_init(&cfg);
	pam_fail_delay(pamh, FAIL_DELAY_USEC);
	if (kt_config_parse_args(&cfg, argc, argv, &conf_path, err, sizeof(err)) != KT_R_OK ||
	    kt_config_load(&cfg, conf_path, KT_TRUSTED_UID, err, sizeof(err)) != KT_R_OK) {
		pam_syslog(pamh, LOG_ERR, "configuration refused: %s", err);
		rc = PAM_SERVICE_ERR;
		goto out;
	}
	rc = pam_get_user(pamh, &user, NULL);
	if (rc != PAM_SUCCESS || user == NULL) {
		pam_syslog(pamh, LOG_NOTICE, "cannot determine the user: %s", pam_strerror(pamh, rc));
		rc = rc == PAM_CONV_AGAIN ? PAM_INCOMPLETE : PAM_USER_UNKNOWN;
		goto out;
	}
	rc = get_token(pamh, &cfg, &token, &owned);
	if (rc != PAM_SUCCESS) {
		pam_syslog(pamh, LOG_NOTICE, "no token: %s", pam_strerror(pamh, rc));
		goto out;
	}
	/* the access review's %s (docs/design.md §10); libpam owns the string */
	if (pam_get_item(pamh, PAM_SERVICE, &service) == PAM_SUCCESS)
		cfg.service = service;
	if (cfg.debug)
		pam_syslog(pamh, LOG_DEBUG, "conf=%s helper=%s servers=%zu audiences=%zu",
		           conf_path, cfg.helper != NULL ? cfg.helper : KT_HELPER_PATH,
		           cfg.n_servers, cfg.n_audiences);

	kt_decide(&cfg, conf_path, token, strlen(token), user, &d);
	if (d.cache_error[0] != '\0')
		pam_syslog(pamh, LOG_WARNING, "cache unavailable: %s", d.cache_error);
	if (d.local.warning[0] != '\0') {
		kt_escape(d.local.warning, strlen(d.local.warning), esc, sizeof(esc));
		pam_syslog(pamh, LOG_WARNING, "local verification unavailable, reviewing without "
		           "it: %s", esc);
	}
	if (d.cache_store_errno != 0)
		pam_syslog(pamh, LOG_WARNING, "cache: result not stored: %s",
		           d.cache_store_errno == EFBIG ? "the file size limit (RLIMIT_FSIZE) is too low"
		                                        : strerror(d.cache_store_errno));
	if (cfg.debug)
		pam_syslog(pamh, LOG_DEBUG, "reviewed=%s http=%ld groups=%zu rule_line=%u local_uid=%ld",
		           d.reviewed ? "yes" : "no", d.http_status, d.id.n_groups, d.rule_line,
		           d.account_checked ? (long)d.local_uid : -1L);

	rc = pam_code(d.reason, cfg.ignore_non_token);
	if (rc == PAM_SUCCESS)
		rc = record_session(pamh, user, &d);
	/* one line, for the final outcome: an allowed token whose identity cannot be exported is a deny */
	pam_get_item(pamh, PAM_RHOST, &rhost);
	kt_logline_format(&d, user, rhost, line, sizeof(line));
	pam_syslog(pamh, kt_reason_log_priority(d.reason), "%s", line);
out:
	kt_secret_free(&owned);
	kt_decision_free(&d);
	kt_config_free(&cfg);
	scrub_token_traces();
	return rc;
}

int kt_auth_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const void *authenticated = NULL;
	const char *user = NULL;

	(void)flags;
	(void)argc;
	(void)argv;
	if (pam_get_data(pamh, DATA_AUTHENTICATED, &authenticated) != PAM_SUCCESS ||
	    authenticated == NULL)
		return PAM_IGNORE;
	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || user == NULL ||
	    strcmp(user, authenticated) != 0) {
		pam_syslog(pamh, LOG_ERR, "account: user changed since the token was checked");
		return PAM_PERM_DENIED;
	}
	return PAM_SUCCESS;
}
