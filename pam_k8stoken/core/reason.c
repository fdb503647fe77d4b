#include <string.h>

#include "reason.h"

static const char *const names[KT_R__COUNT] = {
	[KT_R_OK] = "ok",
	[KT_R_EMPTY_TOKEN] = "empty_token",
	[KT_R_NOT_JWT] = "not_jwt",
	[KT_R_TOKEN_TOO_LONG] = "token_too_long",
	[KT_R_INCOMPLETE_TOKEN] = "incomplete_token",
	[KT_R_BAD_SIGNATURE] = "bad_signature",
	[KT_R_UNKNOWN_KEY] = "unknown_key",
	[KT_R_EXPIRED] = "expired",
	[KT_R_NOT_YET_VALID] = "not_yet_valid",
	[KT_R_ISSUER_MISMATCH] = "issuer_mismatch",
	[KT_R_UNAUTHENTICATED] = "unauthenticated",
	[KT_R_AUDIENCE] = "audience_mismatch",
	[KT_R_NOT_SERVICEACCOUNT] = "not_serviceaccount",
	[KT_R_BAD_IDENTITY] = "bad_identity",
	[KT_R_LEGACY_TOKEN] = "legacy_token",
	[KT_R_DENY_RULE] = "deny_rule",
	[KT_R_NOT_MAPPED] = "not_mapped",
	[KT_R_ACCESS_DENIED] = "access_denied",
	[KT_R_UNKNOWN_USER] = "unknown_user",
	[KT_R_UID_POLICY] = "uid_policy",
	[KT_R_TRANSPORT] = "transport",
	[KT_R_TIMEOUT] = "timeout",
	[KT_R_REDIRECT] = "redirect_refused",
	[KT_R_REVIEWER_REJECTED] = "reviewer_rejected",
	[KT_R_HTTP_STATUS] = "http_status",
	[KT_R_REPLY_TOO_LARGE] = "reply_too_large",
	[KT_R_MALFORMED_REPLY] = "malformed_reply",
	[KT_R_REVIEWER_CREDENTIAL] = "reviewer_credential",
	[KT_R_HELPER] = "helper_failed",
	[KT_R_CIRCUIT_OPEN] = "circuit_open",
	[KT_R_NO_KEYS] = "keys_unavailable",
	[KT_R_CONFIG] = "config",
	[KT_R_NOMEM] = "nomem",
	[KT_R_SYSTEM] = "system",
	[KT_R_OFFLINE_GRACE] = "offline_grace",
};

const char *kt_reason_name(enum kt_reason r)
{
	if ((unsigned)r >= KT_R__COUNT || names[r] == NULL)
		return "unknown";
	return names[r];
}

enum kt_reason kt_reason_from_name(const char *name)
{
	for (unsigned i = 0; i < KT_R__COUNT; i++)
		if (names[i] != NULL && strcmp(names[i], name) == 0)
			return (enum kt_reason)i;
	return KT_R__COUNT;
}

enum kt_reason_class kt_reason_class(enum kt_reason r)
{
	if (r == KT_R_OK || r == KT_R_OFFLINE_GRACE)
		return KT_CLASS_ALLOW;
	if (r >= KT_R_EMPTY_TOKEN && r <= KT_R_UID_POLICY)
		return KT_CLASS_DENY;
	return KT_CLASS_UNAVAILABLE;
}
