/* Local verification of a token's signature and claims with OpenSSL (jwt_verify.h). */
#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jwt_verify.h"
#include "secure.h"

__attribute__((format(printf, 4, 5)))
static enum kt_reason say(enum kt_reason r, char *detail, size_t detail_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, detail_len, fmt, ap);
	va_end(ap);
	return r;
}

static const struct {
	const char *alg;
	enum kt_jwk_type type;
	const char *digest;
	size_t ec_coord;   /* bytes of r and of s */
} algs[] = {
	{ "RS256", KT_JWK_RSA, "SHA256", 0 }, { "ES256", KT_JWK_EC, "SHA256", 32 },
	{ "ES384", KT_JWK_EC, "SHA384", 48 }, { "ES512", KT_JWK_EC, "SHA512", 66 },
};

/* JOSE's raw r||s into the DER ECDSA-Sig-Value OpenSSL verifies; its length, 0 on failure. */
static size_t ecdsa_der(const unsigned char *sig, size_t coord, unsigned char *out, size_t outsz)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, (int)coord, NULL), *s = BN_bin2bn(sig + coord, (int)coord, NULL);
	unsigned char *p = out;
	int n = 0;

	if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
		r = s = NULL;   /* owned by es now */
		if (i2d_ECDSA_SIG(es, NULL) <= (int)outsz)
			n = i2d_ECDSA_SIG(es, &p);
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return n > 0 ? (size_t)n : 0;
}

static bool signature_verifies(EVP_PKEY *pkey, size_t a, const char *tok,
                               const struct kt_token_parts *parts)
{
	unsigned char der[160];
	const unsigned char *sig = parts->sig;
	size_t sig_len = parts->sig_len;
	EVP_MD_CTX *ctx;
	bool ok;

	if (pkey == NULL)
		return false;
	if (algs[a].type == KT_JWK_EC) {
		if (sig_len != 2 * algs[a].ec_coord)
			return false;
		sig_len = ecdsa_der(parts->sig, algs[a].ec_coord, der, sizeof(der));
		sig = der;
		if (sig_len == 0)
			return false;
	} else if ((size_t)EVP_PKEY_get_size(pkey) != sig_len) {
		return false;
	}
	ctx = EVP_MD_CTX_new();
	ok = ctx != NULL &&
	     EVP_DigestVerifyInit_ex(ctx, NULL, algs[a].digest, NULL, NULL, pkey, NULL) == 1 &&
	     EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)tok, parts->signed_len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

bool kt_jwt_kid(const struct kt_token_parts *parts, char *out, size_t outsz, bool *bad)
{
	json_object *v;
	const char *s;

	out[0] = '\0';
	if (!json_object_object_get_ex(parts->header, "kid", &v))
		return false;
	s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
	if (s == NULL || strlen(s) != (size_t)json_object_get_string_len(v) || strlen(s) >= outsz ||
	    s[0] == '\0') {
		*bad = true;
		return false;
	}
	memcpy(out, s, strlen(s) + 1);
	return true;
}

static enum kt_reason check_signature(const char *tok, const struct kt_token_parts *parts,
                                      const struct kt_jwks *set, char *detail, size_t dlen)
{
	char kid[KT_JWKS_KID_MAX + 1];
	bool bad = false, has_kid, named = false;
	json_object *v;
	const char *alg = NULL;
	size_t a;

	if (json_object_object_get_ex(parts->header, "alg", &v))
		alg = json_object_get_string(v);
	for (a = 0; alg != NULL && a < sizeof(algs) / sizeof(algs[0]); a++)
		if (strcmp(alg, algs[a].alg) == 0)
			break;
	if (alg == NULL || a == sizeof(algs) / sizeof(algs[0]))
		return say(KT_R_BAD_SIGNATURE, detail, dlen, "alg %.16s is not one kube-apiserver "
		           "signs with", alg != NULL ? alg : "(none)");
	has_kid = kt_jwt_kid(parts, kid, sizeof(kid), &bad);
	if (bad)
		return say(KT_R_UNKNOWN_KEY, detail, dlen, "kid is not a key id of this cluster");
	for (size_t i = 0; i < set->n; i++) {
		const struct kt_jwk *k = &set->keys[i];

		if (has_kid && strcmp(k->kid, kid) != 0)
			continue;
		named = true;
		if (k->type == algs[a].type &&
		    (k->type == KT_JWK_RSA || strcmp(k->ec_alg, algs[a].alg) == 0) &&
		    signature_verifies(k->pkey, a, tok, parts))
			return KT_R_OK;
	}
	if (!named)
		return say(KT_R_UNKNOWN_KEY, detail, dlen, "no key of the cluster has kid %s", kid);
	return say(KT_R_BAD_SIGNATURE, detail, dlen, "the %s signature does not verify with key %s",
	           algs[a].alg, has_kid ? kid : "(any)");
}

/* claim as an integer: 1 present, 0 absent, -1 of another type. */
static int int_claim(json_object *payload, const char *name, long long *out)
{
	json_object *v;

	if (!json_object_object_get_ex(payload, name, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return -1;
	*out = (long long)json_object_get_int64(v);
	return 1;
}

static bool in_list(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; s != NULL && i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

static bool string_of(json_object *v, const char **out)
{
	*out = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
	return *out != NULL && strlen(*out) == (size_t)json_object_get_string_len(v);
}

static bool audience_fits(json_object *payload, char *const *audiences, size_t n)
{
	json_object *aud;
	const char *s;

	if (!json_object_object_get_ex(payload, "aud", &aud))
		return false;
	if (json_object_is_type(aud, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(aud); i++)
			if (string_of(json_object_array_get_idx(aud, i), &s) && in_list(audiences, n, s))
				return true;
		return false;
	}
	return string_of(aud, &s) && in_list(audiences, n, s);
}

static enum kt_reason check_times(json_object *payload, long long now, struct kt_verified_claims *c,
                                  char *detail, size_t dlen)
{
	long long exp = 0, nbf = 0, iat = 0;
	int has_exp = int_claim(payload, "exp", &exp), has_nbf = int_claim(payload, "nbf", &nbf),
	    has_iat = int_claim(payload, "iat", &iat);

	if (has_exp < 0 || has_nbf < 0 || has_iat < 0)
		return say(KT_R_NOT_YET_VALID, detail, dlen, "exp, nbf or iat is not an integer");
	/* compared as now - leeway > exp: exp + leeway overflows for an exp near INT64_MAX */
	if (has_exp && now - KT_JWT_LEEWAY > exp)
		return say(KT_R_EXPIRED, detail, dlen, "expired %lld s ago", now - exp);
	if (has_nbf && nbf - KT_JWT_LEEWAY > now)
		return say(KT_R_NOT_YET_VALID, detail, dlen, "valid only in %lld s (nbf)", nbf - now);
	if (has_iat && iat - KT_JWT_LEEWAY > now)
		return say(KT_R_NOT_YET_VALID, detail, dlen, "issued %lld s in the future (iat)",
		           iat - now);
	c->has_exp = has_exp == 1;
	c->exp = exp;
	return KT_R_OK;
}

static void identity_claims(json_object *payload, struct kt_verified_claims *c)
{
	json_object *v, *k8s, *sa;
	const char *s;

	if (json_object_object_get_ex(payload, "sub", &v) && string_of(v, &s) &&
	    strlen(s) < sizeof(c->sub))
		memcpy(c->sub, s, strlen(s) + 1);
	if (json_object_object_get_ex(payload, "kubernetes.io", &k8s) &&
	    json_object_object_get_ex(k8s, "serviceaccount", &sa) &&
	    json_object_object_get_ex(sa, "uid", &v) && string_of(v, &s) &&
	    strlen(s) < sizeof(c->sa_uid))
		memcpy(c->sa_uid, s, strlen(s) + 1);
}

enum kt_reason kt_jwt_check(const char *tok, const struct kt_token_parts *parts,
                            const struct kt_jwks *set, char *const *issuers, size_t n_issuers,
                            char *const *audiences, size_t n_audiences, bool legacy,
                            long long now, struct kt_verified_claims *claims,
                            char *detail, size_t detail_len)
{
	json_object *v;
	const char *iss = NULL;
	enum kt_reason r;

	memset(claims, 0, sizeof(*claims));
	r = check_signature(tok, parts, set, detail, detail_len);
	if (r != KT_R_OK || legacy)
		return r;   /* a legacy token has no aud, exp or issuer of the cluster's to check */
	if (!json_object_object_get_ex(parts->payload, "iss", &v) || !string_of(v, &iss) ||
	    !in_list(issuers, n_issuers, iss)) {
		return say(KT_R_ISSUER_MISMATCH, detail, detail_len, "iss %s is not the cluster's",
		           iss != NULL ? iss : "(none)");
	}
	r = check_times(parts->payload, now, claims, detail, detail_len);
	if (r != KT_R_OK)
		return r;
	if (!audience_fits(parts->payload, audiences, n_audiences))
		return say(KT_R_AUDIENCE, detail, detail_len, "aud names no configured audience");
	identity_claims(parts->payload, claims);
	return KT_R_OK;
}
