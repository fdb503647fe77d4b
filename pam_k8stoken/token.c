/*
 * Local, reject-only shape checks of a presented token (token.h).
 *
 * Nothing here ever accepts a token: a token that passes is merely worth asking the API
 * server about, and acceptance is always the API server's (TokenReview). These checks
 * exist so that a mistyped password, sshd's "\b\n\r\177INCORRECT" filler or any other
 * non-token never leaves the host, and so that the multi-part prompt knows when a joined
 * answer is structurally complete.
 *
 * Cost: O(1) for the length checks, one pass over the bytes for the charset, and at most
 * KT_TOKEN_SEG_MAX decoded bytes each for header and payload (both in one stack buffer).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include "json_strict.h"
#include "token.h"

/* Largest decoded header or payload we look at; real ones are 60..900 bytes (facts §8). */
#define KT_TOKEN_SEG_MAX 8192
/* Nesting accepted inside header/payload (payload: root, kubernetes.io, pod = 3). */
#define KT_TOKEN_JSON_DEPTH 8

static const struct {
	const char *name;
	size_t sig_min, sig_max;   /* signature segment length in base64url chars */
} kt_algs[] = {
	/* RSA: modulus of 256..1024 whole bytes (2048..8192 bits) -> ceil(k*4/3) chars */
	{ "RS256", 342, 1366 }, { "RS384", 342, 1366 }, { "RS512", 342, 1366 },
	{ "PS256", 342, 1366 }, { "PS384", 342, 1366 }, { "PS512", 342, 1366 },
	/* ECDSA: raw r||s, 2*32, 2*48, 2*66 bytes */
	{ "ES256", 86, 86 }, { "ES384", 128, 128 }, { "ES512", 176, 176 },
};

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decoded size of an unpadded base64url text of n chars (n % 4 != 1). */
static size_t b64url_decoded_len(size_t n)
{
	return n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
}

/*
 * Strict unpadded base64url: only the 64 symbols, n % 4 != 1, and the unused low bits of
 * the last symbol must be zero (what every encoder, Go's included, produces). out may be
 * NULL to validate only. Returns the decoded length or SIZE_MAX.
 */
static size_t b64url_decode(const char *in, size_t n, unsigned char *out, size_t outsz)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;

	if (n % 4 == 1)
		return SIZE_MAX;
	if (out != NULL && b64url_decoded_len(n) > outsz)
		return SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_value((unsigned char)in[i]);

		if (v < 0)
			return SIZE_MAX;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (out != NULL)
				out[o] = (unsigned char)((acc >> bits) & 0xffu);
			o++;
		}
		acc &= (1u << bits) - 1u;
	}
	if (acc != 0)   /* non-zero trailing bits: not a canonical encoding */
		return SIZE_MAX;
	return o;
}

/* Strict parse of a whole buffer into a JSON object; NULL otherwise. */
static json_object *parse_object(const unsigned char *buf, size_t n)
{
	struct json_tokener *tok;
	json_object *obj;

	size_t members;

	if (n == 0 || n > KT_TOKEN_SEG_MAX || !kt_json_lex(buf, n, KT_TOKEN_JSON_DEPTH, &members))
		return NULL;
	tok = json_tokener_new_ex(KT_TOKEN_JSON_DEPTH);
	if (tok == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, (const char *)buf, (int)n);
	if (obj != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
	                    json_tokener_get_parse_end(tok) != n ||
	                    !json_object_is_type(obj, json_type_object))) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

/* Member key of obj as a string without embedded NUL, or NULL (absent or wrong type: *bad). */
static const char *get_string(json_object *obj, const char *key, bool *bad)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(obj, key, &v))
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		*bad = true;
		return NULL;
	}
	s = json_object_get_string(v);
	if (s == NULL || strlen(s) != (size_t)json_object_get_string_len(v)) {
		*bad = true;
		return NULL;
	}
	return s;
}

static bool sig_len_fits(size_t idx, size_t siglen)
{
	size_t k;

	if (siglen < kt_algs[idx].sig_min || siglen > kt_algs[idx].sig_max)
		return false;
	if (kt_algs[idx].sig_min == kt_algs[idx].sig_max)
		return true;
	/* RSA: siglen must be exactly ceil(k*4/3) for a whole number of modulus bytes k */
	k = siglen * 3 / 4;
	return (k * 4 + 2) / 3 == siglen && k >= 256 && k <= 1024;
}

enum kt_reason kt_token_check(const char *tok, size_t len, size_t max_len,
                              struct kt_token_info *info)
{
	unsigned char buf[KT_TOKEN_SEG_MAX];
	const char *seg[3];
	size_t seglen[3];
	size_t nseg = 0, start = 0, alg_idx = SIZE_MAX, n;
	json_object *hdr = NULL, *pl = NULL, *v;
	struct kt_token_info tmp;
	enum kt_reason r = KT_R_NOT_JWT;
	bool bad = false;
	const char *s;

	memset(&tmp, 0, sizeof(tmp));
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (tok == NULL || len == 0)
		return KT_R_EMPTY_TOKEN;
	if (len > max_len)
		return KT_R_TOKEN_TOO_LONG;   /* O(1): before looking at any byte */

	/* charset and segmentation in one pass */
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)tok[i] : '.';

		if (c == '.') {
			if (nseg == 3 || i == start)
				return KT_R_NOT_JWT;   /* a 4th segment, or an empty one */
			seg[nseg] = tok + start;
			seglen[nseg] = i - start;
			nseg++;
			start = i + 1;
		} else if (b64url_value(c) < 0) {
			return KT_R_NOT_JWT;
		}
	}
	if (nseg != 3)
		return KT_R_NOT_JWT;
	if (seglen[0] % 4 == 1 || seglen[1] % 4 == 1 || seglen[2] % 4 == 1 ||
	    b64url_decoded_len(seglen[0]) > KT_TOKEN_SEG_MAX ||
	    b64url_decoded_len(seglen[1]) > KT_TOKEN_SEG_MAX)
		return KT_R_NOT_JWT;

	/* header */
	n = b64url_decode(seg[0], seglen[0], buf, sizeof(buf));
	if (n == SIZE_MAX || (hdr = parse_object(buf, n)) == NULL)
		goto out;
	s = get_string(hdr, "alg", &bad);
	if (s == NULL)
		goto out;
	for (size_t a = 0; a < sizeof(kt_algs) / sizeof(kt_algs[0]); a++)
		if (strcmp(s, kt_algs[a].name) == 0)
			alg_idx = a;
	if (alg_idx == SIZE_MAX)
		goto out;   /* none, HS*, EdDSA, anything unknown */
	memcpy(tmp.alg, kt_algs[alg_idx].name, strlen(kt_algs[alg_idx].name) + 1);

	/* signature: length fits alg, decodes */
	if (!sig_len_fits(alg_idx, seglen[2]) ||
	    b64url_decode(seg[2], seglen[2], NULL, 0) == SIZE_MAX)
		goto out;

	/* payload */
	n = b64url_decode(seg[1], seglen[1], buf, sizeof(buf));
	if (n == SIZE_MAX || (pl = parse_object(buf, n)) == NULL)
		goto out;
	if (json_object_object_get_ex(pl, "exp", &v)) {
		if (!json_object_is_type(v, json_type_int))
			goto out;
		tmp.has_exp = true;
		tmp.exp = (long long)json_object_get_int64(v);
	}
	s = get_string(pl, "iss", &bad);
	if (bad)
		goto out;
	tmp.legacy = s != NULL && strcmp(s, "kubernetes/serviceaccount") == 0;

	r = KT_R_OK;
	if (info != NULL)
		*info = tmp;
out:
	json_object_put(hdr);
	json_object_put(pl);
	explicit_bzero(buf, sizeof(buf));   /* decoded claims are not secret, but cheap */
	return r;
}
