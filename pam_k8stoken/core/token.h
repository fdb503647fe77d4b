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
 *   - signature length fits alg (ES256 86, ES384 128, ES512 176 chars; RS/PS with a
 *     2048-, 3072- or 4096-bit key: 342, 512 or 683 chars).
 * Anything else: KT_R_NOT_JWT. info may be NULL.
 */
enum kt_reason kt_token_check(const char *tok, size_t len, size_t max_len,
                              struct kt_token_info *info);

/* How far text is on its way to a ServiceAccount JWT, for entry in several parts. */
enum kt_token_shape {
	KT_SHAPE_COMPLETE,   /* passes kt_token_check's shape rules (size limit aside) */
	KT_SHAPE_PARTIAL,    /* not yet, but more text could make it one: ask for the next part */
	KT_SHAPE_NOT_TOKEN,  /* nothing appended can make it a token (e.g. a password) */
};

/*
 * PARTIAL requires the text to start like a JWT ("eyJ", the base64url of '{"'), to use
 * only the token alphabet, to have at most three segments, every finished segment
 * (header, payload) to decode as kt_token_check demands, and a signature shorter than
 * the longest the header's alg allows.
 */
enum kt_token_shape kt_token_shape(const char *text, size_t len);

/* A token that passed kt_token_check, decoded for local signature verification (jwt_verify.c). */
#define KT_TOKEN_SIG_MAX 512   /* bytes: a 4096-bit RSA signature */
struct json_object;
struct kt_token_parts {
	struct json_object *header;    /* the JOSE header object */
	struct json_object *payload;   /* the claims object */
	size_t signed_len;             /* tok[0..signed_len) is the signing input "HEADER.PAYLOAD" */
	unsigned char sig[KT_TOKEN_SIG_MAX];
	size_t sig_len;
};

/*
 * Decodes header, payload and signature of tok[0..len) with the same strict rules as
 * kt_token_check (which must have passed). KT_R_NOT_JWT when it does not decode (or the
 * signature is longer than KT_TOKEN_SIG_MAX), KT_R_NOMEM. Release with kt_token_parts_free.
 */
enum kt_reason kt_token_decode(const char *tok, size_t len, struct kt_token_parts *parts);
void kt_token_parts_free(struct kt_token_parts *parts);

/*
 * Strict unpadded base64url (the token's own decoder, for the keys of a JWKS): decoded
 * length, or SIZE_MAX when not canonical or longer than outsz.
 */
size_t kt_b64url_decode(const char *in, size_t n, unsigned char *out, size_t outsz);

#endif
