/*
 * Unit tests for jwks.c and jwt_verify.c: key sets parsed strictly, and tokens verified with
 * OpenSSL for every algorithm and key size kube-apiserver uses (docs/design.md §6.3). Keys
 * are generated here, turned into JWKs, and tokens signed with them.
 *
 * `test_jwt_verify --bench N` instead prints the cost of one signature check per algorithm
 * (RS256-2048, RS256-4096, ES256, ...) in microseconds, for `make bench` (tests/bench.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "jwks.h"
#include "jwt_verify.h"
#include "reason.h"
#include "token.h"

#define ISSUER "https://kubernetes.default.svc.cluster.local"

static char *const issuers[] = { (char *)ISSUER };
static char *const audiences[] = { (char *)"pam-test" };

struct kind {
	const char *name, *alg, *digest;
	int rsa_bits;        /* 0: EC */
	const char *curve;   /* OpenSSL group name */
	size_t coord;
	EVP_PKEY *key;
	char jwk[2048];
};

static struct kind kinds[] = {
	{ "RS256-2048", "RS256", "SHA256", 2048, NULL, 0, NULL, "" },
	{ "RS256-3072", "RS256", "SHA256", 3072, NULL, 0, NULL, "" },
	{ "RS256-4096", "RS256", "SHA256", 4096, NULL, 0, NULL, "" },
	{ "ES256", "ES256", "SHA256", 0, "P-256", 32, NULL, "" },
	{ "ES384", "ES384", "SHA384", 0, "P-384", 48, NULL, "" },
	{ "ES512", "ES512", "SHA512", 0, "P-521", 66, NULL, "" },
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static void b64url(const unsigned char *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
		             (i + 2 < n ? in[i + 2] : 0);

		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = a[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = a[v & 63];
	}
	out[o] = '\0';
}

static void bn_b64(const BIGNUM *bn, size_t width, char *out)
{
	unsigned char buf[1024];
	size_t n = width ? width : (size_t)BN_num_bytes(bn);

	BN_bn2binpad(bn, buf, (int)n);
	b64url(buf, n, out);
}

static void make_key(struct kind *k)
{
	char n64[700], e64[16], x64[100], y64[100];
	BIGNUM *n = NULL, *e = NULL, *x = NULL, *y = NULL;

	if (k->key != NULL)
		return;
	if (k->rsa_bits) {
		k->key = EVP_RSA_gen((unsigned)k->rsa_bits);
		assert_non_null(k->key);
		assert_int_equal(EVP_PKEY_get_bn_param(k->key, OSSL_PKEY_PARAM_RSA_N, &n), 1);
		assert_int_equal(EVP_PKEY_get_bn_param(k->key, OSSL_PKEY_PARAM_RSA_E, &e), 1);
		bn_b64(n, 0, n64);
		bn_b64(e, 0, e64);
		snprintf(k->jwk, sizeof(k->jwk), "{\"use\":\"sig\",\"kty\":\"RSA\",\"kid\":\"%s\","
		         "\"alg\":\"RS256\",\"n\":\"%s\",\"e\":\"%s\"}", k->name, n64, e64);
	} else {
		k->key = EVP_EC_gen(k->curve);
		assert_non_null(k->key);
		assert_int_equal(EVP_PKEY_get_bn_param(k->key, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
		assert_int_equal(EVP_PKEY_get_bn_param(k->key, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
		bn_b64(x, k->coord, x64);
		bn_b64(y, k->coord, y64);
		snprintf(k->jwk, sizeof(k->jwk), "{\"use\":\"sig\",\"kty\":\"EC\",\"kid\":\"%s\","
		         "\"crv\":\"%s\",\"alg\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}", k->name, k->curve,
		         k->alg, x64, y64);
	}
	BN_free(n);
	BN_free(e);
	BN_free(x);
	BN_free(y);
}

/* A token signed by k with the payload claims given (JSON), the kid of k. */
static char *sign(const struct kind *k, const char *kid, const char *payload)
{
	char header[200], h64[300], *p64 = malloc(2 * strlen(payload) + 8), *tok;
	unsigned char sig[600], raw[140];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t n;

	snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"kid\":\"%s\"}", k->alg, kid);
	b64url((const unsigned char *)header, strlen(header), h64);
	b64url((const unsigned char *)payload, strlen(payload), p64);
	n = strlen(h64) + 1 + strlen(p64);
	tok = malloc(n + 1000);
	snprintf(tok, n + 1000, "%s.%s", h64, p64);
	assert_int_equal(EVP_DigestSignInit_ex(ctx, NULL, k->digest, NULL, NULL, k->key, NULL), 1);
	assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)tok, n), 1);
	EVP_MD_CTX_free(ctx);
	if (!k->rsa_bits) {   /* DER ECDSA-Sig-Value to JOSE's r||s */
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);

		BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)k->coord);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + k->coord, (int)k->coord);
		ECDSA_SIG_free(es);
		memcpy(sig, raw, 2 * k->coord);
		siglen = 2 * k->coord;
	}
	tok[n] = '.';
	b64url(sig, siglen, tok + n + 1);
	free(p64);
	return tok;
}

static char *payload(long long exp_delta, const char *aud, const char *iss)
{
	static char buf[1024];
	long long now = (long long)time(NULL);

	snprintf(buf, sizeof(buf), "{\"aud\":[\"%s\"],\"exp\":%lld,\"iat\":%lld,\"iss\":\"%s\","
	         "\"kubernetes.io\":{\"namespace\":\"pam\",\"serviceaccount\":{\"name\":\"pam-user\","
	         "\"uid\":\"8f5660ff-e115-44f9-9aeb-e060246c6860\"}},\"nbf\":%lld,"
	         "\"sub\":\"system:serviceaccount:pam:pam-user\"}", aud, now + exp_delta, now, iss, now);
	return buf;
}

static char *jwks_of_all(void)
{
	static char buf[16384];
	size_t pos = (size_t)snprintf(buf, sizeof(buf), "{\"keys\":[");

	for (size_t i = 0; i < N_KINDS; i++)
		pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, "%s%s", i ? "," : "", kinds[i].jwk);
	snprintf(buf + pos, sizeof(buf) - pos, "]}");
	return buf;
}

static enum kt_reason check(const char *tok, const char *set_text, const char *kid)
{
	struct kt_token_parts parts;
	struct kt_verified_claims claims;
	struct kt_jwks set;
	char why[256], detail[256];
	enum kt_reason r;

	assert_int_equal(kt_token_check(tok, strlen(tok), 16384, NULL), KT_R_OK);
	assert_int_equal(kt_token_decode(tok, strlen(tok), &parts), KT_R_OK);
	assert_int_equal(kt_jwks_parse(set_text, strlen(set_text), kid, &set, why, sizeof(why)), KT_R_OK);
	r = kt_jwt_check(tok, &parts, &set, issuers, 1, audiences, 1, false, (long long)time(NULL),
	                 &claims, detail, sizeof(detail));
	if (r == KT_R_OK) {
		assert_string_equal(claims.sub, "system:serviceaccount:pam:pam-user");
		assert_string_equal(claims.sa_uid, "8f5660ff-e115-44f9-9aeb-e060246c6860");
	}
	kt_jwks_free(&set);
	kt_token_parts_free(&parts);
	return r;
}

static void test_every_kind_verifies_and_a_flipped_bit_does_not(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_KINDS; i++)
		make_key(&kinds[i]);
	for (size_t i = 0; i < N_KINDS; i++) {
		char *tok = sign(&kinds[i], kinds[i].name, payload(600, "pam-test", ISSUER));
		size_t last = strlen(tok) - 5;

		assert_int_equal(check(tok, jwks_of_all(), kinds[i].name), KT_R_OK);
		tok[last] = tok[last] == 'A' ? 'B' : 'A';
		assert_int_equal(check(tok, jwks_of_all(), kinds[i].name), KT_R_BAD_SIGNATURE);
		free(tok);
	}
}

static void test_claims(void **state)
{
	struct kind *k = &kinds[3];
	char *tok;

	(void)state;
	make_key(k);
	tok = sign(k, k->name, payload(-61, "pam-test", ISSUER));
	assert_int_equal(check(tok, jwks_of_all(), k->name), KT_R_EXPIRED);
	free(tok);
	tok = sign(k, k->name, payload(-59, "pam-test", ISSUER));   /* within the leeway */
	assert_int_equal(check(tok, jwks_of_all(), k->name), KT_R_OK);
	free(tok);
	tok = sign(k, k->name, payload(600, "other", ISSUER));
	assert_int_equal(check(tok, jwks_of_all(), k->name), KT_R_AUDIENCE);
	free(tok);
	tok = sign(k, k->name, payload(600, "pam-test", "https://evil"));
	assert_int_equal(check(tok, jwks_of_all(), k->name), KT_R_ISSUER_MISMATCH);
	free(tok);
	tok = sign(k, "no-such-kid", payload(600, "pam-test", ISSUER));
	assert_int_equal(check(tok, jwks_of_all(), "no-such-kid"), KT_R_UNKNOWN_KEY);
	free(tok);
	/* an EC key named by an RSA kid: the kind does not fit */
	tok = sign(k, kinds[0].name, payload(600, "pam-test", ISSUER));
	assert_int_equal(check(tok, jwks_of_all(), kinds[0].name), KT_R_BAD_SIGNATURE);
	free(tok);
}

static void refused(const char *text)
{
	struct kt_jwks set;
	char why[256];

	assert_int_equal(kt_jwks_parse(text, strlen(text), NULL, &set, why, sizeof(why)),
	                 KT_R_MALFORMED_REPLY);
	assert_true(why[0] != '\0');
	assert_int_equal(set.n, 0);
}

static void test_bad_key_sets(void **state)
{
	(void)state;
	refused("");
	refused("[]");
	refused("{\"keys\":[]}");
	refused("{\"keys\":{}}");
	refused("{\"keys\":[1]}");
	refused("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}");
	refused("{\"keys\":[{\"kty\":\"RSA\",\"n\":5,\"e\":\"AQAB\"}]}");
	refused("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}");   /* 24-bit n */
	refused("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}");
	refused("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}");
	refused("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]} trailing");
	refused("{\"keys\":[NaN]}");
}

/* --bench N: microseconds per signature check, per kind */
static int bench(int n)
{
	for (size_t i = 0; i < N_KINDS; i++)
		make_key(&kinds[i]);
	for (size_t i = 0; i < N_KINDS; i++) {
		char *tok = sign(&kinds[i], kinds[i].name, payload(600, "pam-test", ISSUER));
		struct kt_token_parts parts;
		struct kt_verified_claims claims;
		struct kt_jwks set;
		char why[256], detail[256];
		struct timespec a, b;
		double verify_us, parse_us;

		kt_token_decode(tok, strlen(tok), &parts);
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (int j = 0; j < n; j++) {
			kt_jwks_parse(jwks_of_all(), strlen(jwks_of_all()), kinds[i].name, &set, why,
			              sizeof(why));
			kt_jwks_free(&set);
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		parse_us = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 / n;
		kt_jwks_parse(jwks_of_all(), strlen(jwks_of_all()), kinds[i].name, &set, why, sizeof(why));
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (int j = 0; j < n; j++)
			if (kt_jwt_check(tok, &parts, &set, issuers, 1, audiences, 1, false,
			                 (long long)time(NULL), &claims, detail, sizeof(detail)) != KT_R_OK)
				return 1;
		clock_gettime(CLOCK_MONOTONIC, &b);
		verify_us = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 / n;
		printf("verify %s %.1f parse %.1f\n", kinds[i].name, verify_us, parse_us);
		kt_jwks_free(&set);
		kt_token_parts_free(&parts);
		free(tok);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_kind_verifies_and_a_flipped_bit_does_not),
		cmocka_unit_test(test_claims),
		cmocka_unit_test(test_bad_key_sets),
	};
	int rc;

	if (argc == 3 && strcmp(argv[1], "--bench") == 0)
		rc = bench(atoi(argv[2]));
	else
		rc = cmocka_run_group_tests(tests, NULL, NULL);
	for (size_t i = 0; i < N_KINDS; i++)
		EVP_PKEY_free(kinds[i].key);
	return rc;
}
