/* Closed set of outcomes shared by every unit; each maps to one PAM code in auth.c. */
#ifndef KT_REASON_H
#define KT_REASON_H

enum kt_reason {
	KT_R_OK = 0,
	/* input rejected locally, nothing sent anywhere */
	KT_R_EMPTY_TOKEN,       /* empty answer */
	KT_R_NOT_JWT,           /* not shaped like a ServiceAccount JWT */
	KT_R_TOKEN_TOO_LONG,    /* longer than max_token_size */
	KT_R_INCOMPLETE_TOKEN,  /* the start of a token, but the parts stopped before its end */
	/* local verification with the cluster's keys (jwt_verify.c): nothing sent anywhere */
	KT_R_BAD_SIGNATURE,     /* the signature does not verify with the key it names */
	KT_R_UNKNOWN_KEY,       /* no key of the cluster has the token's kid */
	KT_R_EXPIRED,           /* exp more than 60 s ago */
	KT_R_NOT_YET_VALID,     /* nbf or iat more than 60 s ahead */
	KT_R_ISSUER_MISMATCH,   /* iss is not the cluster's issuer */
	/* definitive answers about the token or the identity */
	KT_R_UNAUTHENTICATED,   /* TokenReview: authenticated absent/false */
	KT_R_AUDIENCE,          /* status.audiences lacks every configured audience */
	KT_R_NOT_SERVICEACCOUNT,/* username is not system:serviceaccount:NS:NAME */
	KT_R_BAD_IDENTITY,      /* SA username but uid/groups missing or inconsistent */
	KT_R_LEGACY_TOKEN,      /* non-expiring token and allow_legacy_tokens = no */
	KT_R_DENY_RULE,         /* a deny rule matched */
	KT_R_NOT_MAPPED,        /* no map rule renders PAM_USER */
	KT_R_ACCESS_DENIED,     /* SubjectAccessReview: RBAC does not allow this login (access.c) */
	KT_R_UNKNOWN_USER,      /* PAM_USER is not a local account */
	KT_R_UID_POLICY,        /* account below min_uid, or root without allow_root */
	/* the API server could not give an answer */
	KT_R_TRANSPORT,         /* connect/TLS/DNS/reset */
	KT_R_TIMEOUT,           /* deadline passed */
	KT_R_REDIRECT,          /* 3xx: never followed */
	KT_R_REVIEWER_REJECTED, /* 401/403: our reviewer credential or its RBAC */
	KT_R_HTTP_STATUS,       /* any other non-200/201 */
	KT_R_REPLY_TOO_LARGE,   /* body over the cap */
	KT_R_MALFORMED_REPLY,   /* not a well-formed, well-typed TokenReview */
	KT_R_REVIEWER_CREDENTIAL, /* reviewer token / client cert unusable on this host */
	KT_R_HELPER,            /* helper could not be run or misbehaved */
	KT_R_CIRCUIT_OPEN,      /* every server is in its backoff after failing (breaker.c) */
	KT_R_NO_KEYS,           /* local_verify = yes and the cluster's keys cannot be had */
	/* local problems */
	KT_R_CONFIG,            /* bad or unsafe configuration */
	KT_R_NOMEM,
	KT_R_SYSTEM,
	/* allowed without the API server: it is down and offline_grace vouches (offline.c) */
	KT_R_OFFLINE_GRACE,
	KT_R__COUNT
};

/* Stable lower_snake name used in log lines and tool output ("not_mapped"). */
const char *kt_reason_name(enum kt_reason r);
/* Which of the three kinds of outcome a reason is. */
enum kt_reason_class {
	KT_CLASS_ALLOW,       /* KT_R_OK, KT_R_OFFLINE_GRACE */
	KT_CLASS_DENY,        /* a definitive no about this token or account */
	KT_CLASS_UNAVAILABLE, /* no answer could be had: outage, misconfiguration, local failure */
};
enum kt_reason_class kt_reason_class(enum kt_reason r);

/* Parses a name back; returns KT_R__COUNT when unknown. */
enum kt_reason kt_reason_from_name(const char *name);

#endif
