/* Local, reject-only checks of a presented token before anything is sent anywhere. */
#ifndef KT_TOKEN_H
#define KT_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#include "reason.h"

/* What the (unverified) token says about itself; used only to refuse, never to accept. */
struct kt_token_info {
	char alg[8];          /* "RS256", "ES256", ... */
	bool has_exp;
	long long exp;        /* seconds since the epoch, when has_exp */
	bool legacy;          /* Secret-based token: iss "kubernetes/serviceaccount", no exp */
};

/*
 * Checks that tok[0..len) is shaped like a ServiceAccount JWT:
 *   - 1 <= len <= max_len (else KT_R_EMPTY_TOKEN / KT_R_TOKEN_TOO_LONG);
 *   - charset [A-Za-z0-9_-.] only, exactly three non-empty dot-separated segments;
 *   - header: base64url (no padding) of a JSON object with a string "alg" among
 *     RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 (never none/HS*);
 *   - payload: base64url of a JSON object; "exp", when present, an integer;
 *   - signature length fits alg (ES256 86, ES384 128, ES512 176 chars; RSA/PS:
 *     a 2048..8192-bit modulus in whole bytes -> ceil(bytes*4/3) chars).
 * Anything else: KT_R_NOT_JWT. info may be NULL.
 */
enum kt_reason kt_token_check(const char *tok, size_t len, size_t max_len,
                              struct kt_token_info *info);

#endif
