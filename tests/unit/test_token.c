/*
 * Unit tests for token.c: the local, reject-only shape check of a presented token
 * (docs/security.md D02, D04, D06, D07; docs/kubernetes.md §2, §8).
 *
 * Real-shaped tokens are built here: base64url of the header and payload Kubernetes
 * writes, and a dummy signature of the length the algorithm implies. At the end the
 * binary prints how many bad tokens were tried and how many passed the check (must be 0).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "reason.h"
#include "token.h"

#define MAX_DEFAULT 16384

static unsigned long hostile_tried, false_accepts, good_tried, mutants_tried, mutants_passed;

/* docs/kubernetes.md §8: header and payload of the 874-char RS256 example */
#define H_RS256_B64 "eyJhbGciOiJSUzI1NiIsImtpZCI6IjctN0xUMURXT1FQOVByeERrMzRieDFKa08xWVRCNGZDWkx6NzFEUFBiLTgifQ"
#define P_EXAMPLE_B64 "eyJhdWQiOlsicGFtLXRlc3QiXSwiZXhwIjoxNzM1NjkwMjAwLCJpYXQiOjE3MzU2ODk2MDAsImlzcyI6Imh0dHBzOi8va3ViZXJuZXRlcy5kZWZhdWx0LnN2Yy5jbHVzdGVyLmxvY2FsIiwianRpIjoiNTBmY2EyODYtYjYwMC00NWNlLWJmZWMtNzg4YjIwZmFiYzViIiwia3ViZXJuZXRlcy5pbyI6eyJuYW1lc3BhY2UiOiJwYW0iLCJzZXJ2aWNlYWNjb3VudCI6eyJuYW1lIjoicGFtLXVzZXIiLCJ1aWQiOiI4ZjU2NjBmZi1lMTE1LTQ0ZjktOWFlYi1lMDYwMjQ2YzY4NjAifX0sIm5iZiI6MTczNTY4OTYwMCwic3ViIjoic3lzdGVtOnNlcnZpY2VhY2NvdW50OnBhbTpwYW0tdXNlciJ9"
#define KID "7-7LT1DWOQP9PrxDk34bx1JkO1YTB4fCZLz71DPPb-8"
#define PAYLOAD_KUBECTL \
	"{\"aud\":[\"pam-test\"],\"exp\":1735690200,\"iat\":1735689600," \
	"\"iss\":\"https://kubernetes.default.svc.cluster.local\",\"jti\":\"50fca286-b600-45ce-bfec-788b20fabc5b\"," \
	"\"kubernetes.io\":{\"namespace\":\"pam\",\"serviceaccount\":{\"name\":\"pam-user\",\"uid\":\"8f5660ff-e115-44f9-9aeb-e060246c6860\"}}," \
	"\"nbf\":1735689600,\"sub\":\"system:serviceaccount:pam:pam-user\"}"
#define PAYLOAD_POD \
	"{\"aud\":[\"https://kubernetes.default.svc.cluster.local\"],\"exp\":1749207355,\"iat\":1717671355," \
	"\"iss\":\"https://kubernetes.default.svc.cluster.local\",\"jti\":\"e51f1fbc-4733-4b85-a59f-ba80c0523874\"," \
	"\"kubernetes.io\":{\"namespace\":\"default\",\"node\":{\"name\":\"contour-worker\",\"uid\":\"517eb86e-b863-451b-bf70-86cb61439a3a\"}," \
	"\"pod\":{\"name\":\"my-app-5d9c7b6f4-x2x7k\",\"uid\":\"0d8b260e-ef0e-45fb-be8e-ff44f97722e8\"}," \
	"\"serviceaccount\":{\"name\":\"default\",\"uid\":\"e6a8680e-d103-4cce-80ea-03acbbeacf7d\"},\"warnafter\":1717674962}," \
	"\"nbf\":1717671355,\"sub\":\"system:serviceaccount:default:default\"}"
#define PAYLOAD_LEGACY \
	"{\"iss\":\"kubernetes/serviceaccount\",\"kubernetes.io/serviceaccount/namespace\":\"default\"," \
	"\"kubernetes.io/serviceaccount/secret.name\":\"build-robot-secret\"," \
	"\"kubernetes.io/serviceaccount/service-account.name\":\"build-robot\"," \
	"\"kubernetes.io/serviceaccount/service-account.uid\":\"e6a8680e-d103-4cce-80ea-03acbbeacf7d\"," \
	"\"sub\":\"system:serviceaccount:default:build-robot\"}"

/* ------------------------------------------------------------------ helpers */

static char *b64url(const unsigned char *in, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(n / 3 * 4 + 5);
	size_t o = 0, i = 0;

	assert_non_null(out);
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
		out[o++] = tab[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
	}
	out[o] = '\0';
	return out;
}

static char *b64s(const char *s)
{
	return b64url((const unsigned char *)s, strlen(s));
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

/* A canonical base64url signature of nbytes pseudo-random bytes. */
static char *sig_bytes(size_t nbytes)
{
	unsigned char *b = malloc(nbytes + 1);
	char *s;

	assert_non_null(b);
	for (size_t i = 0; i < nbytes; i++)
		b[i] = (unsigned char)rng();
	s = b64url(b, nbytes);
	free(b);
	return s;
}

static char *join3(const char *h, const char *p, const char *s)
{
	size_t n = strlen(h) + strlen(p) + strlen(s) + 3;
	char *t = malloc(n);

	assert_non_null(t);
	snprintf(t, n, "%s.%s.%s", h, p, s);
	return t;
}

/* Token from JSON header and payload texts and a signature of sigbytes bytes. */
static char *make_token(const char *header_json, const char *payload_json, size_t sigbytes)
{
	char *h = b64s(header_json), *p = b64s(payload_json), *s = sig_bytes(sigbytes), *t;

	t = join3(h, p, s);
	free(h);
	free(p);
	free(s);
	return t;
}

static char *header_for(const char *alg)
{
	char *h = NULL;

	assert_true(asprintf(&h, "{\"alg\":\"%s\",\"kid\":\"" KID "\"}", alg) > 0);
	return h;
}

static char *make_alg_token(const char *alg, const char *payload, size_t sigbytes)
{
	char *h = header_for(alg), *t = make_token(h, payload, sigbytes);

	free(h);
	return t;
}

/* Checks an exact-size copy (so ASan sees any over-read), counts, asserts. */
static enum kt_reason check(const char *tok, size_t len, size_t max, enum kt_reason want,
                            struct kt_token_info *info)
{
	char *copy = malloc(len ? len : 1);
	struct kt_token_info tmp;
	enum kt_reason r;

	assert_non_null(copy);
	if (len)
		memcpy(copy, tok, len);
	memset(&tmp, 0xa5, sizeof(tmp));
	r = kt_token_check(copy, len, max, &tmp);
	free(copy);
	if (want == KT_R_OK) {
		good_tried++;
	} else {
		hostile_tried++;
		if (r == KT_R_OK)
			false_accepts++;
	}
	if (r != KT_R_OK) {
		static const struct kt_token_info zero;

		assert_memory_equal(&tmp, &zero, sizeof(zero));
	}
	if (r != want)
		fail_msg("expected %s, got %s for (%zu bytes) %.120s", kt_reason_name(want),
		         kt_reason_name(r), len, tok);
	if (info != NULL)
		*info = tmp;
	return r;
}

static void expect_str(const char *tok, enum kt_reason want)
{
	check(tok, strlen(tok), MAX_DEFAULT, want, NULL);
}

static void expect_free(char *tok, enum kt_reason want)
{
	expect_str(tok, want);
	free(tok);
}

static bool in_charset(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* ------------------------------------------------------------------- tests */

static void test_real_shapes(void **state)
{
	struct kt_token_info info;
	char *s = sig_bytes(256), *t = join3(H_RS256_B64, P_EXAMPLE_B64, s);
	char *p;

	(void)state;
	/* the docs/kubernetes.md §8 example, byte for byte, with a 2048-bit signature: 874 chars */
	assert_int_equal(strlen(t), 874);
	check(t, strlen(t), MAX_DEFAULT, KT_R_OK, &info);
	assert_string_equal(info.alg, "RS256");
	assert_true(info.has_exp);
	assert_int_equal(info.exp, 1735690200LL);
	assert_false(info.legacy);
	free(t);
	/* our encoder reproduces the example's payload segment */
	p = b64s(PAYLOAD_KUBECTL);
	assert_string_equal(p, P_EXAMPLE_B64);
	free(p);
	/* RSA-4096 adds 341 chars */
	t = join3(H_RS256_B64, P_EXAMPLE_B64, (free(s), s = sig_bytes(512)));
	assert_int_equal(strlen(t), 874 + 341);
	check(t, strlen(t), MAX_DEFAULT, KT_R_OK, NULL);
	free(t);
	free(s);

	t = make_alg_token("ES256", PAYLOAD_KUBECTL, 64);
	assert_int_equal(strlen(t), 618);   /* docs/kubernetes.md §8 */
	check(t, strlen(t), MAX_DEFAULT, KT_R_OK, &info);
	assert_string_equal(info.alg, "ES256");
	free(t);

	t = make_alg_token("RS256", PAYLOAD_POD, 256);
	check(t, strlen(t), MAX_DEFAULT, KT_R_OK, &info);
	assert_true(info.has_exp);
	assert_int_equal(info.exp, 1749207355LL);
	free(t);

	t = make_alg_token("RS256", PAYLOAD_LEGACY, 256);
	check(t, strlen(t), MAX_DEFAULT, KT_R_OK, &info);
	assert_true(info.legacy);
	assert_false(info.has_exp);
	free(t);
	t = make_alg_token("ES256", PAYLOAD_LEGACY, 64);
	assert_int_equal(strlen(t), 653);   /* docs/kubernetes.md §8 */
	free(t);

	{
		static const struct { const char *alg; size_t bytes; } more[] = {
			{ "RS384", 384 }, { "RS512", 512 }, { "PS256", 256 }, { "PS384", 384 }, { "PS512", 512 },
			{ "ES384", 96 }, { "ES512", 132 }, { "RS256", 384 }, { "RS256", 512 },
		};

		for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
			t = make_alg_token(more[i].alg, PAYLOAD_KUBECTL, more[i].bytes);
			check(t, strlen(t), MAX_DEFAULT, KT_R_OK, &info);
			assert_string_equal(info.alg, more[i].alg);
			free(t);
		}
	}
	/* header without kid, with typ, and other key order: still a shape we pass on */
	expect_free(make_token("{\"alg\":\"RS256\"}", PAYLOAD_KUBECTL, 256), KT_R_OK);
	expect_free(make_token("{\"typ\":\"JWT\",\"kid\":\"x\",\"alg\":\"ES256\"}", PAYLOAD_KUBECTL, 64), KT_R_OK);
	/* info may be NULL */
	t = make_alg_token("RS256", PAYLOAD_KUBECTL, 256);
	assert_int_equal(kt_token_check(t, strlen(t), MAX_DEFAULT, NULL), KT_R_OK);
	assert_int_equal(kt_token_check(t, strlen(t), 10, NULL), KT_R_TOKEN_TOO_LONG);
	free(t);
}

static void test_lengths(void **state)
{
	size_t mib = 1024 * 1024;
	char *big = malloc(mib + 2);
	char *t = make_alg_token("RS256", PAYLOAD_KUBECTL, 256);
	size_t n = strlen(t);

	(void)state;
	assert_non_null(big);
	check("", 0, MAX_DEFAULT, KT_R_EMPTY_TOKEN, NULL);
	check(t, 0, MAX_DEFAULT, KT_R_EMPTY_TOKEN, NULL);
	assert_int_equal(kt_token_check(NULL, 0, MAX_DEFAULT, NULL), KT_R_EMPTY_TOKEN);
	/* max boundary */
	check(t, n, n, KT_R_OK, NULL);
	check(t, n, n - 1, KT_R_TOKEN_TOO_LONG, NULL);
	check(t, n, 0, KT_R_TOKEN_TOO_LONG, NULL);
	/* D02: 8 KiB+1, 64 KiB, 1 MiB of anything, over max: refused before any scan */
	memset(big, 0, mib + 2);
	check(big, 8193, 8192, KT_R_TOKEN_TOO_LONG, NULL);
	check(big, 65536, MAX_DEFAULT, KT_R_TOKEN_TOO_LONG, NULL);
	check(big, mib, MAX_DEFAULT, KT_R_TOKEN_TOO_LONG, NULL);
	check(big, mib + 1, mib, KT_R_TOKEN_TOO_LONG, NULL);
	/* within a 1 MiB max: charset-valid junk of 1 MiB, one segment and three */
	memset(big, 'A', mib);
	check(big, mib, mib, KT_R_NOT_JWT, NULL);
	memcpy(big, H_RS256_B64 ".", sizeof(H_RS256_B64));
	big[mib - 343] = '.';
	check(big, mib, mib, KT_R_NOT_JWT, NULL);     /* 1 MiB payload */
	memcpy(big + sizeof(H_RS256_B64), P_EXAMPLE_B64 ".", sizeof(P_EXAMPLE_B64));
	big[mib - 343] = 'A';
	check(big, mib, mib, KT_R_NOT_JWT, NULL);     /* 1 MiB signature */
	memset(big, 'A', 20000);
	big[10] = '.';
	big[20] = '.';
	check(big, mib, mib, KT_R_NOT_JWT, NULL);     /* 1 MiB header-less junk */
	free(big);
	free(t);
}

/* Decoded header/payload of exactly 8192 bytes pass; 8193 do not. */
static void test_segment_caps(void **state)
{
	(void)state;
	for (size_t target = 8190; target <= 8194; target++) {
		const char *head = "{\"exp\":1,\"pad\":\"";
		size_t fixed = strlen(head) + 2, padn = target - fixed;
		char *p = malloc(target + 1), *t;

		assert_non_null(p);
		snprintf(p, target + 1, "%s%0*d\"}", head, (int)padn, 0);
		assert_int_equal(strlen(p), target);
		t = make_alg_token("RS256", p, 256);
		expect_free(t, target <= 8192 ? KT_R_OK : KT_R_NOT_JWT);
		/* and as a header */
		snprintf(p, target + 1, "{\"alg\":\"RS256\",\"pad\":\"%0*d\"}", (int)(target - 24), 0);
		assert_int_equal(strlen(p), target);
		t = make_token(p, PAYLOAD_KUBECTL, 256);
		expect_free(t, target <= 8192 ? KT_R_OK : KT_R_NOT_JWT);
		free(p);
	}
}

/* D04: every byte value substituted into the signature and inserted anywhere. */
static void test_every_byte(void **state)
{
	char *t = make_alg_token("RS256", PAYLOAD_KUBECTL, 256);
	size_t n = strlen(t);
	char *buf = malloc(n + 2);
	const char *dot1 = strchr(t, '.'), *dot2 = strchr(dot1 + 1, '.');
	size_t positions[] = { 0, 5, (size_t)(dot1 - t), (size_t)(dot1 - t) + 1, (size_t)(dot1 - t) + 100,
	                       (size_t)(dot2 - t), (size_t)(dot2 - t) + 1, n - 100, n - 1, n };

	(void)state;
	assert_non_null(buf);
	for (int b = 0; b < 256; b++) {
		/* substitution in the middle of the signature keeps every length */
		memcpy(buf, t, n);
		buf[(size_t)(dot2 - t) + 10] = (char)b;
		check(buf, n, MAX_DEFAULT, in_charset(b) ? KT_R_OK : KT_R_NOT_JWT, NULL);
		/* insertion: bytes outside the alphabet (and '.') never pass */
		if (in_charset(b))
			continue;
		for (size_t k = 0; k < sizeof(positions) / sizeof(positions[0]); k++) {
			size_t at = positions[k];

			memcpy(buf, t, at);
			buf[at] = (char)b;
			memcpy(buf + at + 1, t + at, n - at);
			check(buf, n + 1, MAX_DEFAULT, KT_R_NOT_JWT, NULL);
		}
	}
	/* whitespace and friends around a valid token (the API server would trim them) */
	{
		static const char *const wrap[][2] = {
			{ " ", "" }, { "", " " }, { "", "\n" }, { "", "\r\n" }, { "\t", "" }, { "Bearer ", "" },
			{ "\"", "\"" }, { "", "=" }, { "", "==" }, { "", "%00" }, { "{", "}" }, { "\xef\xbb\xbf", "" },
		};

		for (size_t i = 0; i < sizeof(wrap) / sizeof(wrap[0]); i++) {
			char *w = NULL;

			assert_true(asprintf(&w, "%s%s%s", wrap[i][0], t, wrap[i][1]) > 0);
			expect_free(w, KT_R_NOT_JWT);
		}
		memcpy(buf, t, n);
		buf[n] = '\0';
		check(buf, n + 1, MAX_DEFAULT, KT_R_NOT_JWT, NULL);   /* trailing NUL counted in len */
	}
	free(buf);
	free(t);
}

static void test_segments(void **state)
{
	static const char *const junk[] = {
		"a", "ab", "abcd", "a.b", "a.b.c.d", "a.b.c.d.e", ".b.c", "a..c", "a.b.", ".", "..", "...",
		"....", "a.b.c", "eyJ.eyJ.sig", "password", "hunter2", "correct horse battery staple",
		"a.b.c\",\"audiences\":[\"https://kubernetes.default.svc",   /* D05 */
		"{\"alg\":\"RS256\"}.{}.sig", "Bearer", "null", "true", "0", "-", "_", "=",
	};
	char *h = b64s("{\"alg\":\"ES256\"}"), *p = b64s(PAYLOAD_KUBECTL), *s = sig_bytes(64), *t = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		expect_str(junk[i], KT_R_NOT_JWT);
	expect_free(join3(h, p, s), KT_R_OK);
	assert_true(asprintf(&t, "%s.%s", h, p) > 0);
	expect_free(t, KT_R_NOT_JWT);
	assert_true(asprintf(&t, "%s.%s.%s.%s", h, p, s, s) > 0);
	expect_free(t, KT_R_NOT_JWT);
	assert_true(asprintf(&t, "%s.%s.%s.", h, p, s) > 0);
	expect_free(t, KT_R_NOT_JWT);
	assert_true(asprintf(&t, ".%s.%s.%s", h, p, s) > 0);
	expect_free(t, KT_R_NOT_JWT);
	assert_true(asprintf(&t, "%s..%s", h, s) > 0);
	expect_free(t, KT_R_NOT_JWT);
	assert_true(asprintf(&t, ".%s.%s", p, s) > 0);
	expect_free(t, KT_R_NOT_JWT);
	assert_true(asprintf(&t, "%s.%s.", h, p) > 0);
	expect_free(t, KT_R_NOT_JWT);
	assert_true(asprintf(&t, "%s.%s.%s", h, s, p) > 0);   /* swapped */
	expect_free(t, KT_R_NOT_JWT);
	assert_true(asprintf(&t, "%s.%s.%s", p, h, s) > 0);
	expect_free(t, KT_R_NOT_JWT);
	free(h);
	free(p);
	free(s);
}

static void test_base64(void **state)
{
	char *h = b64s("{\"alg\":\"ES256\",\"kid\":\"x\"}"), *p = b64s("{\"exp\":12}"), *s = sig_bytes(64);
	char *t = NULL;
	size_t hl = strlen(h), pl = strlen(p);

	(void)state;
	assert_true(hl % 4 == 2 && pl % 4 == 2);   /* both end in a partial group with 4 spare bits */
	expect_free(join3(h, p, s), KT_R_OK);
	/* one or three extra symbols: length % 4 == 3 (decodes to a trailing NUL) and == 1 */
	assert_true(asprintf(&t, "%sA.%s.%s", h, p, s) > 0);
	expect_free(t, KT_R_NOT_JWT);
	assert_true(asprintf(&t, "%s.%sAAA.%s", h, p, s) > 0);
	expect_free(t, KT_R_NOT_JWT);
	/* non-zero trailing bits in the last symbol of header / payload */
	{
		char *hh = strdup(h), *pp = strdup(p);

		hh[hl - 1] = (char)(hh[hl - 1] == 'A' ? 'B' : hh[hl - 1] + 1);
		pp[pl - 1] = (char)(pp[pl - 1] == 'A' ? 'B' : pp[pl - 1] + 1);
		expect_free(join3(hh, p, s), KT_R_NOT_JWT);
		expect_free(join3(h, pp, s), KT_R_NOT_JWT);
		free(hh);
		free(pp);
	}
	/* padding, standard alphabet */
	assert_true(asprintf(&t, "%s==.%s.%s", h, p, s) > 0);
	expect_free(t, KT_R_NOT_JWT);
	{
		char *hh = b64s("{\"alg\":\"ES256\",\"x\":\"?\?\?>>> ?\?\?>>>\"}");

		expect_free(join3(hh, p, s), KT_R_OK);
		for (char *c = hh; *c; c++) {
			if (*c == '-')
				*c = '+';
			else if (*c == '_')
				*c = '/';
		}
		assert_true(strchr(hh, '+') != NULL || strchr(hh, '/') != NULL);
		expect_free(join3(hh, p, s), KT_R_NOT_JWT);
		free(hh);
	}
	/* signature with non-zero trailing bits (86 chars: last symbol carries 4 spare bits) */
	{
		char *ss = strdup(s);

		ss[85] = (char)(ss[85] == 'A' ? 'B' : 'A' + 1);
		expect_free(join3(h, p, ss), KT_R_NOT_JWT);
		free(ss);
	}
	free(h);
	free(p);
	free(s);
}

static void test_header_json(void **state)
{
	static const char *const bad[] = {
		"", "hello", "[\"RS256\"]", "\"RS256\"", "42", "null", "{}", "{\"kid\":\"x\"}",
		"{\"alg\":\"none\"}", "{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}", "{\"alg\":\"HS256\"}",
		"{\"alg\":\"HS384\"}", "{\"alg\":\"HS512\"}", "{\"alg\":\"EdDSA\"}", "{\"alg\":\"rs256\"}",
		"{\"alg\":\"RS256 \"}", "{\"alg\":\" RS256\"}", "{\"alg\":\"RS256\\u0000\"}", "{\"alg\":\"RS2\"}",
		"{\"alg\":\"RS256X\"}", "{\"alg\":\"RS1\"}", "{\"alg\":\"ES256K\"}", "{\"alg\":\"\"}",
		"{\"alg\":256}", "{\"alg\":null}", "{\"alg\":[\"RS256\"]}", "{\"alg\":{\"RS256\":1}}",
		"{\"alg\":true}", "{\"alg\":\"RS256\"}x", "{\"alg\":\"RS256\"}{}", "{\"alg\":\"RS256\",}",
		"{\"alg\":'RS256'}", "{'alg':\"RS256\"}", "{/*c*/\"alg\":\"RS256\"}", "{\"alg\":\"RS256\",\"x\":NaN}",
		"{\"alg\":\"RS256\",\"x\":Infinity}", "{\"alg\":\"RS256\",\"x\":1.}", "{\"alg\":\"RS256\",\"x\":00}",
		"{\"alg\":\"RS256\",\"x\":True}", "{\"alg\":\"RS256\",\"x\":\"a\tb\"}", "{\"alg\":\"RS256\",\"x\":\"\xff\"}",
		"{\"alg\":\"RS256\",\"x\":\"\xed\xa0\x80\"}", "{\"alg\":\"RS256\",\"x\":\"\xc0\xaf\"}",
		"{\"alg\":\"RS256\",\"x\":[[[[[[[[[1]]]]]]]]]}", "\xef\xbb\xbf{\"alg\":\"RS256\"}",
		"{\"alg\":\"RS256\"", "{\"alg\"}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_free(make_token(bad[i], PAYLOAD_KUBECTL, 256), KT_R_NOT_JWT);
	/* acceptable variants: whitespace, nesting within the bound, unicode escape of alg */
	expect_free(make_token(" {\"alg\" : \"RS256\"}\n", PAYLOAD_KUBECTL, 256), KT_R_OK);
	expect_free(make_token("{\"alg\":\"RS256\",\"x\":[[[[[[1]]]]]]}", PAYLOAD_KUBECTL, 256), KT_R_OK);
	expect_free(make_token("{\"alg\":\"\\u0052S256\"}", PAYLOAD_KUBECTL, 256), KT_R_OK);
	/* duplicate alg: json-c keeps the last, as Go's decoder does; only a refusal matters here */
	expect_free(make_token("{\"alg\":\"RS256\",\"alg\":\"none\"}", PAYLOAD_KUBECTL, 256), KT_R_NOT_JWT);
}

/* Every signature length 0..1500 for each algorithm: only the exact fits pass. */
static void test_sig_lengths(void **state)
{
	static const char *const algs[] = { "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	                                    "ES256", "ES384", "ES512" };
	size_t accepted[9] = { 0 };

	(void)state;
	for (size_t a = 0; a < 9; a++) {
		char *h0 = header_for(algs[a]), *h = b64s(h0), *p = b64s(PAYLOAD_KUBECTL);

		for (size_t L = 0; L <= 1500; L++) {
			size_t k = L * 3 / 4;
			char *s = sig_bytes(k), *t;
			bool fits;

			if (strlen(s) != L) {   /* L % 4 == 1: no canonical encoding; append a symbol */
				char *s2 = NULL;

				assert_true(asprintf(&s2, "%sA", s) > 0);
				free(s);
				s = s2;
			}
			assert_int_equal(strlen(s), L);
			if (algs[a][0] == 'E')
				fits = (algs[a][2] == '2' && L == 86) || (algs[a][2] == '3' && L == 128) ||
				       (algs[a][2] == '5' && L == 176);
			else
				fits = L == 342 || L == 512 || L == 683;
			t = join3(h, p, s);
			check(t, strlen(t), MAX_DEFAULT, fits ? KT_R_OK : KT_R_NOT_JWT, NULL);
			accepted[a] += fits;
			free(t);
			free(s);
		}
		free(h0);
		free(h);
		free(p);
	}
	/* RSA: 2048-, 3072- and 4096-bit keys only (issue: "RS/PS256 with 2048/3072/4096-bit keys") */
	assert_int_equal(accepted[0], 3);
	assert_int_equal(accepted[6], 1);
	/* spot checks from the brief: 2048 -> 342, 3072 -> 512, 4096 -> 683, 8192 -> 1366 */
	{
		static const size_t bytes[] = { 256, 384, 512, 1024 };
		static const size_t chars[] = { 342, 512, 683, 1366 };

		for (size_t i = 0; i < 4; i++) {
			char *s = sig_bytes(bytes[i]);

			assert_int_equal(strlen(s), chars[i]);
			free(s);
		}
	}
}

static void test_payload_claims(void **state)
{
	static const char *const bad[] = {
		"{\"exp\":\"1735690200\"}", "{\"exp\":1.5e9}", "{\"exp\":1735690200.0}", "{\"exp\":1e999}",
		"{\"exp\":true}", "{\"exp\":null}", "{\"exp\":[]}", "{\"exp\":{}}", "{\"exp\":[1735690200]}",
		"{\"iss\":1}", "{\"iss\":null}", "{\"iss\":[\"kubernetes/serviceaccount\"]}",
		"{\"iss\":\"kubernetes/serviceaccount\\u0000x\"}", "[]", "[{\"exp\":1}]", "\"x\"", "1", "",
		"{\"exp\":1,}", "{\"exp\":NaN}", "{\"exp\":-Infinity}", "{\"exp\":01}", "{\"exp\":1}{}",
	};
	static const struct { const char *payload; bool has_exp; long long exp; bool legacy; } good[] = {
		{ "{}", false, 0, false },
		{ "{\"exp\":0}", true, 0, false },
		{ "{\"exp\":-1}", true, -1, false },
		{ "{\"exp\":9223372036854775807}", true, 9223372036854775807LL, false },
		{ "{\"iss\":\"kubernetes/serviceaccount\"}", false, 0, true },
		{ "{\"iss\":\"kubernetes/serviceaccount\",\"exp\":5}", true, 5, true },
		{ "{\"iss\":\"kubernetes/serviceaccount \"}", false, 0, false },
		{ "{\"iss\":\"https://kubernetes.default.svc.cluster.local\"}", false, 0, false },
	};
	struct kt_token_info info;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_free(make_alg_token("RS256", bad[i], 256), KT_R_NOT_JWT);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *t = make_alg_token("ES384", good[i].payload, 96);

		check(t, strlen(t), MAX_DEFAULT, KT_R_OK, &info);
		assert_int_equal(info.has_exp, good[i].has_exp);
		assert_int_equal(info.exp, good[i].exp);
		assert_int_equal(info.legacy, good[i].legacy);
		free(t);
	}
}

/* D07: sshd's fake password for invalid users, every length 1..2000. */
static void test_sshd_junk(void **state)
{
	static const char junk[] = "\b\n\r\177INCORRECT";
	char buf[2001];

	(void)state;
	for (size_t n = 1; n <= 2000; n++) {
		for (size_t i = 0; i < n; i++)
			buf[i] = junk[i % (sizeof(junk) - 1)];
		check(buf, n, MAX_DEFAULT, KT_R_NOT_JWT, NULL);
	}
	/* and the same over a small max: too long wins, before any scan */
	check(buf, 2000, 1024, KT_R_TOKEN_TOO_LONG, NULL);
}

/*
 * Random mutations of valid tokens (substitute, insert, delete, truncate, swap dots):
 * no crash, and whatever passes still has the charset and three segments.
 */
static void test_mutations(void **state)
{
	char *tokens[3];

	(void)state;
	tokens[0] = make_alg_token("RS256", PAYLOAD_KUBECTL, 256);
	tokens[1] = make_alg_token("ES256", PAYLOAD_POD, 64);
	tokens[2] = make_alg_token("RS256", PAYLOAD_LEGACY, 512);
	for (size_t round = 0; round < 60000; round++) {
		const char *t = tokens[round % 3];
		size_t n = strlen(t), at = rng() % n, m = n;
		char *buf = malloc(n + 2);
		unsigned op = rng() % 4;
		enum kt_reason r;
		size_t dots = 0;

		assert_non_null(buf);
		memcpy(buf, t, n);
		if (op == 0) {
			buf[at] = (char)(rng() & 0xff);
		} else if (op == 1) {
			memmove(buf + at + 1, buf + at, n - at);
			buf[at] = (char)(rng() & 0xff);
			m = n + 1;
		} else if (op == 2) {
			memmove(buf + at, buf + at + 1, n - at - 1);
			m = n - 1;
		} else {
			m = at;
		}
		r = kt_token_check(buf, m, MAX_DEFAULT, NULL);
		mutants_tried++;
		if (r == KT_R_OK) {
			mutants_passed++;
			for (size_t i = 0; i < m; i++) {
				assert_true(in_charset((unsigned char)buf[i]) || buf[i] == '.');
				dots += buf[i] == '.';
			}
			assert_int_equal(dots, 2);
		}
		free(buf);
	}
	for (size_t i = 0; i < 3; i++)
		free(tokens[i]);
}

/* Every proper prefix of a real token is PARTIAL (or COMPLETE at an RSA length), the whole COMPLETE. */
static void test_shape_of_prefixes(void **state)
{
	static const struct {
		const char *alg;
		size_t sigbytes;
	} kinds[] = { { "RS256", 256 }, { "RS256", 512 }, { "ES256", 64 }, { "ES512", 132 } };
	const char *payload = "{\"aud\":[\"pam-test\"],\"exp\":1735690200,\"iss\":\"https://k\","
	                      "\"sub\":\"system:serviceaccount:pam:pam-user\"}";

	(void)state;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		char *t = make_alg_token(kinds[k].alg, payload, kinds[k].sigbytes);
		size_t len = strlen(t), complete_early = 0;

		assert_int_equal(kt_token_shape(t, len), KT_SHAPE_COMPLETE);
		for (size_t n = 3; n < len; n++) {
			enum kt_token_shape sh = kt_token_shape(t, n);

			assert_true(sh == KT_SHAPE_PARTIAL || sh == KT_SHAPE_COMPLETE);
			complete_early += sh == KT_SHAPE_COMPLETE;
		}
		/* only an RSA-4096 signature passes through a valid 2048/3072-bit length */
		assert_int_equal(complete_early, kinds[k].sigbytes == 512 ? 2 : 0);
		free(t);
	}
}

static void test_shape_of_non_tokens(void **state)
{
	char *bad_hdr = NULL, *none = make_alg_token("none", "{\"exp\":1}", 64);
	char *t = make_alg_token("ES256", "{\"exp\":1}", 64);
	static const char *const passwords[] = {
		"", "e", "ey", "hunter2", "correct horse battery staple", "eyJ hello", "eyJ\n",
		"eyJhbGciOiJSUzI1NiJ9..", "eyJ.a.b.c", "EYJhbGci", "\b\n\r\177INCORRECT",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(passwords) / sizeof(passwords[0]); i++)
		assert_int_equal(kt_token_shape(passwords[i], strlen(passwords[i])), KT_SHAPE_NOT_TOKEN);
	/* a finished header must name an allowed alg */
	*strchr(none, '.') = '\0';
	assert_true(asprintf(&bad_hdr, "%s.", none) > 0);
	assert_int_equal(kt_token_shape(bad_hdr, strlen(bad_hdr)), KT_SHAPE_NOT_TOKEN);
	/* a finished payload must decode; a fourth segment is never a token */
	char *dot = strchr(t, '.');
	char *broken = NULL;
	assert_true(asprintf(&broken, "%.*s.!!!!.", (int)(dot - t), t) > 0);
	assert_int_equal(kt_token_shape(broken, strlen(broken)), KT_SHAPE_NOT_TOKEN);
	free(broken);
	assert_true(asprintf(&broken, "%s.x", t) > 0);
	assert_int_equal(kt_token_shape(broken, strlen(broken)), KT_SHAPE_NOT_TOKEN);
	free(broken);
	/* an ES256 signature longer than 86 characters can never complete */
	assert_true(asprintf(&broken, "%sAAAA", t) > 0);
	assert_int_equal(kt_token_shape(broken, strlen(broken)), KT_SHAPE_NOT_TOKEN);
	free(broken);
	free(bad_hdr);
	free(none);
	free(t);
}

static int print_totals(void **state)
{
	(void)state;
	printf("# test_token: %lu bad tokens tried, %lu false accepts; %lu good tokens passed; "
	       "%lu random mutants (%lu still token-shaped)\n",
	       hostile_tried, false_accepts, good_tried, mutants_tried, mutants_passed);
	return false_accepts == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_shapes),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_segment_caps),
		cmocka_unit_test(test_every_byte),
		cmocka_unit_test(test_segments),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_header_json),
		cmocka_unit_test(test_sig_lengths),
		cmocka_unit_test(test_payload_claims),
		cmocka_unit_test(test_sshd_junk),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_shape_of_prefixes),
		cmocka_unit_test(test_shape_of_non_tokens),
	};

	return cmocka_run_group_tests_name("token", tests, NULL, print_totals);
}
