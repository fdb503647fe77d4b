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

/* Largest decoded header or payload we look at; real ones are 60..900 bytes (docs/kubernetes.md §8). */
#define KT_TOKEN_SEG_MAX 8192
/* Nesting accepted inside header/payload (payload: root, kubernetes.io, pod = 3). */
#define KT_TOKEN_JSON_DEPTH 8

static const struct {
	const char *name;
	size_t sig_min, sig_max;   /* signature segment length in base64url chars */
} kt_algs[] = {
	/*
	 * RSA: 2048-, 3072- and 4096-bit keys (342, 512, 683 chars). Only these few lengths
	 * count as complete, so that a token entered in parts is not judged complete early.
	 */
	{ "RS256", 342, 683 }, { "RS384", 342, 683 }, { "RS512", 342, 683 },
	{ "PS256", 342, 683 }, { "PS384", 342, 683 }, { "PS512", 342, 683 },
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

/* Strict parse of a whole buffer into a JSON object (json_strict.h); NULL otherwise. */
static json_object *parse_object(const unsigned char *buf, size_t n)
{
	json_object *obj;

	if (n > KT_TOKEN_SEG_MAX ||
	    kt_json_parse_object((const char *)buf, n, KT_TOKEN_JSON_DEPTH, &obj) != KT_R_OK)
		return NULL;
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
	if (siglen < kt_algs[idx].sig_min || siglen > kt_algs[idx].sig_max)
		return false;
	if (kt_algs[idx].sig_min == kt_algs[idx].sig_max)
		return true;
	/* RSA: a 2048-, 3072- or 4096-bit modulus, i.e. ceil(k*4/3) for k = 256, 384, 512 bytes */
	return siglen == 342 || siglen == 512 || siglen == 683;
}

/* Index in kt_algs of the algorithm a header segment names, or SIZE_MAX (bad header). */
static size_t header_alg(const char *seg, size_t len, unsigned char buf[KT_TOKEN_SEG_MAX])
{
	json_object *hdr;
	size_t n, idx = SIZE_MAX;
	bool bad = false;
	const char *s;

	if (len % 4 == 1 || b64url_decoded_len(len) > KT_TOKEN_SEG_MAX)
		return SIZE_MAX;
	n = b64url_decode(seg, len, buf, KT_TOKEN_SEG_MAX);
	if (n == SIZE_MAX || (hdr = parse_object(buf, n)) == NULL)
		return SIZE_MAX;
	s = get_string(hdr, "alg", &bad);
	for (size_t a = 0; s != NULL && a < sizeof(kt_algs) / sizeof(kt_algs[0]); a++)
		if (strcmp(s, kt_algs[a].name) == 0)
			idx = a;   /* none, HS*, EdDSA, anything unknown stay SIZE_MAX */
	json_object_put(hdr);
	return idx;
}

/* Checks a payload segment: a JSON object, "exp" an integer, "iss" a string; fills info. */
static bool payload_ok(const char *seg, size_t len, unsigned char buf[KT_TOKEN_SEG_MAX],
                       struct kt_token_info *info)
{
	json_object *pl, *v;
	bool bad = false, ok = false;
	const char *s;
	size_t n;

	if (len % 4 == 1 || b64url_decoded_len(len) > KT_TOKEN_SEG_MAX)
		return false;
	n = b64url_decode(seg, len, buf, KT_TOKEN_SEG_MAX);
	if (n == SIZE_MAX || (pl = parse_object(buf, n)) == NULL)
		return false;
	if (json_object_object_get_ex(pl, "exp", &v)) {
		if (!json_object_is_type(v, json_type_int))
			goto out;
		info->has_exp = true;
		info->exp = (long long)json_object_get_int64(v);
	}
	s = get_string(pl, "iss", &bad);
	if (bad)
		goto out;
	info->legacy = s != NULL && strcmp(s, "kubernetes/serviceaccount") == 0;
	ok = true;
out:
	json_object_put(pl);
	return ok;
}

/*
 * Splits text at its dots into at most three segments; false on a character outside
 * the token alphabet, a fourth segment or an empty one (the last one may be empty when
 * allow_empty_last, for text that is still being entered).
 */
static bool split_segments(const char *text, size_t len, const char *seg[3], size_t seglen[3],
                           size_t *nseg, bool allow_empty_last)
{
	size_t start = 0;

	*nseg = 0;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)text[i] : '.';

		if (c == '.') {
			if (*nseg == 3 || (i == start && !(allow_empty_last && i == len)))
				return false;
			seg[*nseg] = text + start;
			seglen[*nseg] = i - start;
			(*nseg)++;
			start = i + 1;
		} else if (b64url_value(c) < 0) {
			return false;
		}
	}
	return true;
}

enum kt_reason kt_token_check(const char *tok, size_t len, size_t max_len,
                              struct kt_token_info *info)
{
	unsigned char buf[KT_TOKEN_SEG_MAX];
	const char *seg[3];
	size_t seglen[3], nseg, alg_idx;
	struct kt_token_info tmp;
	enum kt_reason r = KT_R_NOT_JWT;

	memset(&tmp, 0, sizeof(tmp));
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (tok == NULL || len == 0)
		return KT_R_EMPTY_TOKEN;
	if (len > max_len)
		return KT_R_TOKEN_TOO_LONG;   /* O(1): before looking at any byte */
	if (!split_segments(tok, len, seg, seglen, &nseg, false) || nseg != 3 || seglen[2] % 4 == 1)
		return KT_R_NOT_JWT;

	alg_idx = header_alg(seg[0], seglen[0], buf);
	if (alg_idx == SIZE_MAX)
		goto out;
	memcpy(tmp.alg, kt_algs[alg_idx].name, strlen(kt_algs[alg_idx].name) + 1);
	/* signature: length fits alg, decodes */
	if (!sig_len_fits(alg_idx, seglen[2]) ||
	    b64url_decode(seg[2], seglen[2], NULL, 0) == SIZE_MAX)
		goto out;
	if (!payload_ok(seg[1], seglen[1], buf, &tmp))
		goto out;
	r = KT_R_OK;
	if (info != NULL)
		*info = tmp;
out:
	explicit_bzero(buf, sizeof(buf));   /* decoded claims are not secret, but cheap */
	return r;
}

enum kt_token_shape kt_token_shape(const char *text, size_t len)
{
	unsigned char buf[KT_TOKEN_SEG_MAX];
	struct kt_token_info info = { 0 };
	enum kt_token_shape shape = KT_SHAPE_NOT_TOKEN;
	const char *seg[3];
	size_t seglen[3], nseg, alg_idx = SIZE_MAX;

	if (kt_token_check(text, len, SIZE_MAX, NULL) == KT_R_OK)
		return KT_SHAPE_COMPLETE;
	/* '{"' in base64url: anything else is a password or noise, never asked to go on */
	if (len < 3 || memcmp(text, "eyJ", 3) != 0 ||
	    !split_segments(text, len, seg, seglen, &nseg, true))
		return KT_SHAPE_NOT_TOKEN;
	/* every finished segment must already be right; the last one may still grow */
	if (nseg == 1) {
		shape = b64url_decoded_len(len) <= KT_TOKEN_SEG_MAX ? KT_SHAPE_PARTIAL
		                                                    : KT_SHAPE_NOT_TOKEN;
		goto out;
	}
	alg_idx = header_alg(seg[0], seglen[0], buf);
	if (alg_idx == SIZE_MAX)
		goto out;
	if (nseg == 2) {
		if (b64url_decoded_len(seglen[1]) <= KT_TOKEN_SEG_MAX)
			shape = KT_SHAPE_PARTIAL;
		goto out;
	}
	if (payload_ok(seg[1], seglen[1], buf, &info) && seglen[2] < kt_algs[alg_idx].sig_max)
		shape = KT_SHAPE_PARTIAL;
out:
	explicit_bzero(buf, sizeof(buf));
	return shape;
}

/* Decodes one base64url segment into a JSON object (the checks of header_alg/payload_ok). */
static json_object *decode_object(const char *seg, size_t len, unsigned char buf[KT_TOKEN_SEG_MAX])
{
	size_t n;

	if (len % 4 == 1 || b64url_decoded_len(len) > KT_TOKEN_SEG_MAX)
		return NULL;
	n = b64url_decode(seg, len, buf, KT_TOKEN_SEG_MAX);
	return n == SIZE_MAX ? NULL : parse_object(buf, n);
}

enum kt_reason kt_token_decode(const char *tok, size_t len, struct kt_token_parts *parts)
{
	unsigned char buf[KT_TOKEN_SEG_MAX];
	const char *seg[3];
	size_t seglen[3], nseg, n;
	enum kt_reason r = KT_R_NOT_JWT;

	memset(parts, 0, sizeof(*parts));
	if (!split_segments(tok, len, seg, seglen, &nseg, false) || nseg != 3)
		return KT_R_NOT_JWT;
	parts->header = decode_object(seg[0], seglen[0], buf);
	if (parts->header != NULL)
		parts->payload = decode_object(seg[1], seglen[1], buf);
	if (parts->payload == NULL)
		goto out;
	n = b64url_decode(seg[2], seglen[2], parts->sig, sizeof(parts->sig));
	if (n == SIZE_MAX)
		goto out;
	parts->sig_len = n;
	parts->signed_len = seglen[0] + 1 + seglen[1];
	r = KT_R_OK;
out:
	explicit_bzero(buf, sizeof(buf));
	if (r != KT_R_OK)
		kt_token_parts_free(parts);
	return r;
}

void kt_token_parts_free(struct kt_token_parts *parts)
{
	json_object_put(parts->header);
	json_object_put(parts->payload);
	memset(parts, 0, sizeof(*parts));
}

size_t kt_b64url_decode(const char *in, size_t n, unsigned char *out, size_t outsz)
{
	return b64url_decode(in, n, out, outsz);
}
