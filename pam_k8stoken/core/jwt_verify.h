/*
 * Local verification of a ServiceAccount token with the cluster's keys (docs/design.md §6.3):
 * reject-only, before any TokenReview. Passing means "worth asking": the TokenReview stays
 * the authority (and offline grace, offline.c, is the one bounded exception).
 */
#ifndef KT_JWT_VERIFY_H
#define KT_JWT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "jwks.h"
#include "reason.h"
#include "token.h"

#define KT_JWT_LEEWAY 60   /* seconds, as kube-apiserver (go-jose jwt.DefaultLeeway) */

/* What a verified token says, for offline grace. */
struct kt_verified_claims {
	char sub[320];       /* system:serviceaccount:NS:NAME */
	char sa_uid[64];     /* kubernetes.io.serviceaccount.uid */
	bool has_exp;
	long long exp;
};

/*
 * Checks parts (kt_token_decode of tok) against set: alg one kube-apiserver signs with
 * (RS256, ES256, ES384, ES512) and a key of that kind with the token's kid (every key when
 * it has none) whose signature verifies; then, unless legacy, iss among issuers, exp and
 * nbf/iat within KT_JWT_LEEWAY of now, aud sharing one of audiences. Returns KT_R_OK or
 * KT_R_BAD_SIGNATURE, KT_R_UNKNOWN_KEY, KT_R_ISSUER_MISMATCH, KT_R_EXPIRED,
 * KT_R_NOT_YET_VALID, KT_R_AUDIENCE (detail says which claim), KT_R_NOMEM.
 */
enum kt_reason kt_jwt_check(const char *tok, const struct kt_token_parts *parts,
                            const struct kt_jwks *set, char *const *issuers, size_t n_issuers,
                            char *const *audiences, size_t n_audiences, bool legacy,
                            long long now, struct kt_verified_claims *claims,
                            char *detail, size_t detail_len);

/* The token header's kid into out (outsz); false when absent. *bad when not a fitting string. */
bool kt_jwt_kid(const struct kt_token_parts *parts, char *out, size_t outsz, bool *bad);

#endif
