/*
 * Every outcome of a decision, one row each: the single source of the reason enum and of
 * everything that follows from a reason (docs/design.md §4.2). No include guard: each user
 * defines KT_REASON(id, name, class, pam, log, tool_exit, what), includes this file to turn
 * the rows into its table, and undefines it again.
 *
 *   id         KT_R_<id>; the row's position is its value (KT_R_OK first, = 0). Values are
 *              never stored or sent (names are), so a row may go anywhere but first
 *   name       stable lower_snake name in log lines, tool output and the helper protocol
 *   class      allow, deny or unavailable (enum kt_reason_class)
 *   pam        what pam_sm_authenticate returns; only module/ expands it, so that core/ and
 *              the helper need no libpam (not_jwt: PAM_IGNORE with ignore_non_token)
 *   log        syslog priority of the decision line (docs/design.md §8.2)
 *   tool_exit  exit status of `k8stoken check`; only tools/k8stoken.c expands it (§9)
 *   what       one line saying what happened
 *
 * A new row goes with its group; tests/repo/test_reasons.py names the documents that must
 * then list it, and tests/unit/test_reason.c checks the rows agree with one another.
 */

KT_REASON(OK, "ok",
          KT_CLASS_ALLOW, PAM_SUCCESS, LOG_INFO, EXIT_ALLOW,
          "mapped ServiceAccount")
/* input rejected locally, nothing sent anywhere */
KT_REASON(EMPTY_TOKEN, "empty_token",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "empty answer")
KT_REASON(NOT_JWT, "not_jwt",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "not shaped like a ServiceAccount JWT")
KT_REASON(TOKEN_TOO_LONG, "token_too_long",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "longer than max_token_size")
KT_REASON(INCOMPLETE_TOKEN, "incomplete_token",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "the start of a token, but the parts stopped before its end")
/* local verification with the cluster's keys (jwt_verify.c): nothing sent anywhere */
KT_REASON(BAD_SIGNATURE, "bad_signature",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "the signature does not verify with the key it names")
KT_REASON(UNKNOWN_KEY, "unknown_key",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "no key of the cluster has the token's kid")
KT_REASON(EXPIRED, "expired",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "exp more than 60 s ago")
KT_REASON(NOT_YET_VALID, "not_yet_valid",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "nbf or iat more than 60 s ahead")
KT_REASON(ISSUER_MISMATCH, "issuer_mismatch",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "iss is not the cluster's issuer")
/* definitive answers about the token or the identity */
KT_REASON(UNAUTHENTICATED, "unauthenticated",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "TokenReview: authenticated absent or false")
KT_REASON(AUDIENCE, "audience_mismatch",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "status.audiences lacks every configured audience")
KT_REASON(NOT_SERVICEACCOUNT, "not_serviceaccount",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "username is not system:serviceaccount:NS:NAME")
KT_REASON(BAD_IDENTITY, "bad_identity",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "SA username but uid/groups missing or inconsistent")
KT_REASON(LEGACY_TOKEN, "legacy_token",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "non-expiring token and allow_legacy_tokens = no")
KT_REASON(DENY_RULE, "deny_rule",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "a deny rule matched")
KT_REASON(NOT_MAPPED, "not_mapped",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "no map rule renders PAM_USER")
KT_REASON(ACCESS_DENIED, "access_denied",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "SubjectAccessReview: RBAC does not allow this login")
KT_REASON(UNKNOWN_USER, "unknown_user",
          KT_CLASS_DENY, PAM_USER_UNKNOWN, LOG_NOTICE, EXIT_DENY,
          "PAM_USER is not a local account")
KT_REASON(UID_POLICY, "uid_policy",
          KT_CLASS_DENY, PAM_AUTH_ERR, LOG_NOTICE, EXIT_DENY,
          "account below min_uid, or root without allow_root")
/* the API server could not give an answer */
KT_REASON(TRANSPORT, "transport",
          KT_CLASS_UNAVAILABLE, PAM_AUTHINFO_UNAVAIL, LOG_ERR, EXIT_UNAVAILABLE,
          "connect, TLS, DNS or reset")
KT_REASON(TIMEOUT, "timeout",
          KT_CLASS_UNAVAILABLE, PAM_AUTHINFO_UNAVAIL, LOG_ERR, EXIT_UNAVAILABLE,
          "deadline passed")
KT_REASON(REDIRECT, "redirect_refused",
          KT_CLASS_UNAVAILABLE, PAM_AUTHINFO_UNAVAIL, LOG_ERR, EXIT_UNAVAILABLE,
          "3xx: never followed")
KT_REASON(REVIEWER_REJECTED, "reviewer_rejected",
          KT_CLASS_UNAVAILABLE, PAM_AUTHINFO_UNAVAIL, LOG_ERR, EXIT_UNAVAILABLE,
          "401/403: our reviewer credential or its RBAC")
KT_REASON(HTTP_STATUS, "http_status",
          KT_CLASS_UNAVAILABLE, PAM_AUTHINFO_UNAVAIL, LOG_ERR, EXIT_UNAVAILABLE,
          "any other status than 200/201")
KT_REASON(REPLY_TOO_LARGE, "reply_too_large",
          KT_CLASS_UNAVAILABLE, PAM_AUTHINFO_UNAVAIL, LOG_ERR, EXIT_UNAVAILABLE,
          "body over the cap")
KT_REASON(MALFORMED_REPLY, "malformed_reply",
          KT_CLASS_UNAVAILABLE, PAM_AUTHINFO_UNAVAIL, LOG_ERR, EXIT_UNAVAILABLE,
          "not a well-formed, well-typed TokenReview")
KT_REASON(REVIEWER_CREDENTIAL, "reviewer_credential",
          KT_CLASS_UNAVAILABLE, PAM_AUTHINFO_UNAVAIL, LOG_ERR, EXIT_UNAVAILABLE,
          "reviewer token or client certificate unusable on this host")
KT_REASON(HELPER, "helper_failed",
          KT_CLASS_UNAVAILABLE, PAM_AUTHINFO_UNAVAIL, LOG_ERR, EXIT_UNAVAILABLE,
          "helper could not be run or misbehaved")
KT_REASON(CIRCUIT_OPEN, "circuit_open",
          KT_CLASS_UNAVAILABLE, PAM_AUTHINFO_UNAVAIL, LOG_ERR, EXIT_UNAVAILABLE,
          "every server is in its backoff after failing")
KT_REASON(NO_KEYS, "keys_unavailable",
          KT_CLASS_UNAVAILABLE, PAM_AUTHINFO_UNAVAIL, LOG_ERR, EXIT_UNAVAILABLE,
          "local_verify = yes and the cluster's keys cannot be had")
/* local problems */
KT_REASON(CONFIG, "config",
          KT_CLASS_UNAVAILABLE, PAM_SERVICE_ERR, LOG_ERR, EXIT_USAGE,
          "bad or unsafe configuration")
KT_REASON(NOMEM, "nomem",
          KT_CLASS_UNAVAILABLE, PAM_BUF_ERR, LOG_ERR, EXIT_UNAVAILABLE,
          "out of memory")
KT_REASON(SYSTEM, "system",
          KT_CLASS_UNAVAILABLE, PAM_SYSTEM_ERR, LOG_ERR, EXIT_UNAVAILABLE,
          "system call or NSS failure")
/* allowed without the API server: it is down and offline_grace vouches (offline.c) */
KT_REASON(OFFLINE_GRACE, "offline_grace",
          KT_CLASS_ALLOW, PAM_SUCCESS, LOG_INFO, EXIT_ALLOW,
          "every server is down and offline grace vouches for the token")
