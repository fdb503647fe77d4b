/*
 * The cluster's public keys (jwks.h): strict JWKS parsing into OpenSSL keys, and the key set
 * kept in the cache directory as a sealed file (sealed.h) that every process shares.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cache_io.h"
#include "config.h"
#include "io.h"
#include "json_strict.h"
#include "jwks.h"
#include "number.h"
#include "sealed.h"
#include "secure.h"
#include "token.h"

#define JWKS_DEPTH 8
#define SEAL_DOMAIN "k8stoken-jwks"
#define STAMP_FILE "jwks-fetch"
#define STAMP_DOMAIN "k8stoken-jwks-fetch"
#define LOCK_FILE "jwks-lock"
#define LOCK_POLL_NS 5000000L
#define MAGIC "k8stoken-jwks 1\n"

__attribute__((format(printf, 3, 4)))
static enum kt_reason refuse(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return KT_R_MALFORMED_REPLY;
}

/* obj[key] as a string (NULL when absent); *bad on a wrong type or an embedded NUL. */
static const char *member_string(json_object *obj, const char *key, bool *bad)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(obj, key, &v))
		return NULL;
	if (!json_object_is_type(v, json_type_string) ||
	    (s = json_object_get_string(v)) == NULL ||
	    strlen(s) != (size_t)json_object_get_string_len(v)) {
		*bad = true;
		return NULL;
	}
	return s;
}

/* Decodes a base64url member into out (at most outsz bytes); its length, or 0. */
static size_t member_bytes(json_object *obj, const char *key, unsigned char *out, size_t outsz)
{
	bool bad = false;
	const char *s = member_string(obj, key, &bad);
	size_t n;

	if (s == NULL || *s == '\0')
		return 0;
	n = kt_b64url_decode(s, strlen(s), out, outsz);
	return n == SIZE_MAX ? 0 : n;
}

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;

	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	OSSL_PARAM_free(params);
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

/* RSA: n of 256, 384 or 512 bytes (top byte set), e odd, 3 <= e < 2^32. */
static enum kt_reason rsa_key(json_object *k, bool build, struct kt_jwk *out, char *why,
                              size_t whylen)
{
	unsigned char n[1024], e[8];
	size_t nlen = member_bytes(k, "n", n, sizeof(n)), elen = member_bytes(k, "e", e, sizeof(e));
	OSSL_PARAM_BLD *bld;
	BIGNUM *bn_n = NULL, *bn_e = NULL;

	if (nlen == 0 || elen == 0)
		return refuse(why, whylen, "RSA key %s: n or e is missing or not base64url", out->kid);
	if ((nlen != 256 && nlen != 384 && nlen != 512) || n[0] == 0)
		return refuse(why, whylen, "RSA key %s: a %zu-bit modulus (2048, 3072 or 4096 only)",
		              out->kid, nlen * 8);
	if (elen > 4 || e[0] == 0 || (e[elen - 1] & 1) == 0 || (elen == 1 && e[0] < 3))
		return refuse(why, whylen, "RSA key %s: unusual public exponent", out->kid);
	out->type = KT_JWK_RSA;
	if (!build)
		return KT_R_OK;
	bld = OSSL_PARAM_BLD_new();
	bn_n = BN_bin2bn(n, (int)nlen, NULL);
	bn_e = BN_bin2bn(e, (int)elen, NULL);
	if (bld != NULL && bn_n != NULL && bn_e != NULL &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1)
		out->pkey = pkey_from_params("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	return out->pkey != NULL ? KT_R_OK : KT_R_NOMEM;
}

static const struct {
	const char *crv, *group, *alg;
	size_t coord;
} curves[] = {
	{ "P-256", "P-256", "ES256", 32 }, { "P-384", "P-384", "ES384", 48 },
	{ "P-521", "P-521", "ES512", 66 },
};

/* EC: a known curve, x and y of its exact size, a point on the curve. */
static enum kt_reason ec_key(json_object *k, bool build, struct kt_jwk *out, char *why,
                             size_t whylen)
{
	unsigned char point[1 + 2 * 66];
	bool bad = false;
	const char *crv = member_string(k, "crv", &bad);
	size_t c, xlen, ylen;
	OSSL_PARAM_BLD *bld;

	for (c = 0; crv != NULL && c < sizeof(curves) / sizeof(curves[0]); c++)
		if (strcmp(crv, curves[c].crv) == 0)
			break;
	if (crv == NULL || c == sizeof(curves) / sizeof(curves[0]))
		return refuse(why, whylen, "EC key %s: curve missing or not P-256, P-384 or P-521",
		              out->kid);
	xlen = member_bytes(k, "x", point + 1, curves[c].coord);
	ylen = member_bytes(k, "y", point + 1 + curves[c].coord, curves[c].coord);
	if (xlen != curves[c].coord || ylen != curves[c].coord)
		return refuse(why, whylen, "EC key %s: x or y is not %zu bytes of base64url",
		              out->kid, curves[c].coord);
	out->type = KT_JWK_EC;
	snprintf(out->ec_alg, sizeof(out->ec_alg), "%s", curves[c].alg);
	if (!build)
		return KT_R_OK;   /* the point is checked when the key is built (the fetch builds all) */
	point[0] = 0x04;   /* uncompressed */
	bld = OSSL_PARAM_BLD_new();
	if (bld != NULL &&
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curves[c].group, 0) == 1 &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
	                                     1 + 2 * curves[c].coord) == 1)
		out->pkey = pkey_from_params("EC", bld);
	OSSL_PARAM_BLD_free(bld);
	/* OpenSSL refuses a point off the curve here; the curves have cofactor 1 */
	if (out->pkey == NULL)
		return refuse(why, whylen, "EC key %s: not a point on %s", out->kid, crv);
	return KT_R_OK;
}

static bool alg_fits(const struct kt_jwk *key, const char *alg)
{
	if (key->type == KT_JWK_EC)
		return strcmp(alg, key->ec_alg) == 0;
	return strcmp(alg, "RS256") == 0;
}

static enum kt_reason one_key(json_object *k, size_t i, const char *want_kid, struct kt_jwk *out,
                              char *why, size_t whylen)
{
	static const char *const private_members[] = { "d", "p", "q", "dp", "dq", "qi", "k" };
	bool bad = false, build;
	const char *kty, *kid, *use, *alg;
	enum kt_reason r;

	if (!json_object_is_type(k, json_type_object))
		return refuse(why, whylen, "key %zu is not an object", i);
	kty = member_string(k, "kty", &bad);
	kid = member_string(k, "kid", &bad);
	use = member_string(k, "use", &bad);
	alg = member_string(k, "alg", &bad);
	if (bad)
		return refuse(why, whylen, "key %zu: kty, kid, use or alg is not a string", i);
	if (kid != NULL && (strlen(kid) == 0 || strlen(kid) > KT_JWKS_KID_MAX))
		return refuse(why, whylen, "key %zu: kid is empty or longer than %d", i, KT_JWKS_KID_MAX);
	for (const char *s = kid; s != NULL && *s != '\0'; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			return refuse(why, whylen, "key %zu: kid is not printable ASCII", i);
	snprintf(out->kid, sizeof(out->kid), "%s", kid != NULL ? kid : "");
	for (size_t p = 0; p < sizeof(private_members) / sizeof(private_members[0]); p++)
		if (json_object_object_get_ex(k, private_members[p], NULL))
			return refuse(why, whylen, "key %zu holds private key material", i);
	if (use != NULL && strcmp(use, "sig") != 0)
		return refuse(why, whylen, "key %zu: use is \"%.20s\", not sig", i, use);
	build = want_kid == NULL || strcmp(want_kid, out->kid) == 0;
	if (kty != NULL && strcmp(kty, "RSA") == 0)
		r = rsa_key(k, build, out, why, whylen);
	else if (kty != NULL && strcmp(kty, "EC") == 0)
		r = ec_key(k, build, out, why, whylen);
	else
		return refuse(why, whylen, "key %zu: kty is not RSA or EC", i);
	if (r == KT_R_OK && alg != NULL && !alg_fits(out, alg))
		r = refuse(why, whylen, "key %zu: alg \"%.20s\" does not fit the key", i, alg);
	return r;
}

enum kt_reason kt_jwks_parse(const char *text, size_t len, const char *want_kid,
                             struct kt_jwks *set, char *why, size_t whylen)
{
	json_object *root = NULL, *keys;
	enum kt_reason r;
	size_t n;

	memset(set, 0, sizeof(*set));
	why[0] = '\0';
	if (len == 0 || len > KT_JWKS_MAX)
		return refuse(why, whylen, "key set is empty or larger than %d bytes", KT_JWKS_MAX);
	r = kt_json_parse_object(text, len, JWKS_DEPTH, &root);
	if (r == KT_R_NOMEM)
		return r;
	if (r != KT_R_OK)
		return refuse(why, whylen, "key set is not strict JSON (or has a duplicate key)");
	r = refuse(why, whylen, "key set is not an object with a \"keys\" array");
	if (root == NULL || !json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "keys", &keys) ||
	    !json_object_is_type(keys, json_type_array))
		goto out;
	n = json_object_array_length(keys);
	if (n == 0 || n > KT_JWKS_MAX_KEYS) {
		r = refuse(why, whylen, "key set has %zu keys (1 to %d)", n, KT_JWKS_MAX_KEYS);
		goto out;
	}
	why[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		r = one_key(json_object_array_get_idx(keys, i), i, want_kid, &set->keys[i], why, whylen);
		set->n = i + 1;
		if (r != KT_R_OK)
			goto out;
		for (size_t j = 0; j < i; j++)
			if (strcmp(set->keys[j].kid, set->keys[i].kid) == 0) {
				r = refuse(why, whylen, "two keys have the kid \"%s\"", set->keys[i].kid);
				goto out;
			}
	}
	r = KT_R_OK;
out:
	json_object_put(root);
	if (r != KT_R_OK)
		kt_jwks_free(set);
	return r;
}

void kt_jwks_free(struct kt_jwks *set)
{
	for (size_t i = 0; i < set->n; i++)
		EVP_PKEY_free(set->keys[i].pkey);
	memset(set, 0, sizeof(*set));
}

/* ---- the key set in the cache directory ---- */

void kt_jwks_source(const struct kt_config *cfg, char out[KT_JWKS_SOURCE_SIZE])
{
	unsigned char md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int mdlen = 0;
	bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;

	for (size_t i = 0; ok && i < cfg->n_servers; i++)
		ok = EVP_DigestUpdate(ctx, cfg->servers[i], strlen(cfg->servers[i]) + 1) == 1;
	if (ok && cfg->jwks_uri != NULL)
		ok = EVP_DigestUpdate(ctx, cfg->jwks_uri, strlen(cfg->jwks_uri) + 1) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == sizeof(md);
	EVP_MD_CTX_free(ctx);
	if (ok)
		kt_hex(md, (KT_JWKS_SOURCE_SIZE - 1) / 2, out);
	else
		snprintf(out, KT_JWKS_SOURCE_SIZE, "unknown");   /* never equal to a digest */
}

int kt_jwks_store(const struct kt_cache *c, const char *source, const char *issuer,
                  const char *document, size_t len)
{
	char boot_id[40], head[KT_JWKS_ISSUER_MAX + 200], *text;
	size_t hlen;
	int n, rc;

	if (kt_cache_boot_id(boot_id) < 0 || strchr(issuer, '\n') != NULL ||
	    strlen(issuer) > KT_JWKS_ISSUER_MAX)
		return -1;
	n = snprintf(head, sizeof(head), MAGIC "boot_id %s\nsource %s\nfetched %lld\nissuer %s\n"
	             "document %zu\n", boot_id, source, kt_clock_ms(CLOCK_BOOTTIME), issuer, len);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	hlen = (size_t)n;
	text = malloc(hlen + len + 1);
	if (text == NULL)
		return -1;
	memcpy(text, head, hlen);
	memcpy(text + hlen, document, len);
	text[hlen + len] = '\n';
	rc = kt_sealed_write(c, KT_JWKS_FILE, SEAL_DOMAIN, text, hlen + len + 1);
	free(text);
	return rc;
}

/* Takes "KEY VALUE\n" at *p; the value is copied into out (outsz) NUL-terminated. */
static bool take_line(const char **p, const char *end, const char *key, char *out, size_t outsz)
{
	size_t klen = strlen(key);
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t vlen;

	if (nl == NULL || (size_t)(nl - *p) <= klen + 1 || memcmp(*p, key, klen) != 0 ||
	    (*p)[klen] != ' ')
		return false;
	vlen = (size_t)(nl - *p) - klen - 1;
	if (vlen >= outsz)
		return false;
	memcpy(out, *p + klen + 1, vlen);
	out[vlen] = '\0';
	*p = nl + 1;
	return true;
}

int kt_jwks_load(const struct kt_cache *c, const char *source, struct kt_jwks_stored *st)
{
	char boot_id[40], value[KT_JWKS_ISSUER_MAX + 1];
	unsigned long long fetched, doclen;
	size_t len;
	char *text = kt_sealed_read(c, KT_JWKS_FILE, SEAL_DOMAIN, KT_JWKS_MAX + 1024, &len);
	const char *p = text, *end = text + len;

	memset(st, 0, sizeof(*st));
	if (text == NULL || kt_cache_boot_id(boot_id) < 0)
		goto bad;
	if (len < sizeof(MAGIC) - 1 || memcmp(p, MAGIC, sizeof(MAGIC) - 1) != 0)
		goto bad;
	p += sizeof(MAGIC) - 1;
	if (!take_line(&p, end, "boot_id", value, sizeof(value)) || strcmp(value, boot_id) != 0)
		goto bad;
	if (!take_line(&p, end, "source", value, sizeof(value)) || strcmp(value, source) != 0)
		goto bad;   /* the keys of another server list: as if there were none */
	if (!take_line(&p, end, "fetched", value, sizeof(value)) ||
	    !kt_parse_uint(value, 0, INT64_MAX, &fetched))
		goto bad;
	if (!take_line(&p, end, "issuer", st->issuer, sizeof(st->issuer)))
		goto bad;
	if (!take_line(&p, end, "document", value, sizeof(value)) ||
	    !kt_parse_uint(value, 1, KT_JWKS_MAX, &doclen) || (size_t)(end - p) != doclen + 1)
		goto bad;
	st->fetched_ms = (long long)fetched;
	st->document_len = (size_t)doclen;
	memmove(text, p, st->document_len);
	text[st->document_len] = '\0';
	st->document = text;
	return 0;
bad:
	free(text);
	memset(st, 0, sizeof(*st));
	return -1;
}

void kt_jwks_stored_free(struct kt_jwks_stored *st)
{
	free(st->document);
	memset(st, 0, sizeof(*st));
}

/* The last fetch started for source, CLOCK_BOOTTIME ms of this boot; 0 when none is known. */
static long long last_fetch(const struct kt_cache *c, const char *source)
{
	char boot_id[40], want[80 + KT_JWKS_SOURCE_SIZE];
	unsigned long long at = 0;
	size_t len, wl;
	char *text = kt_sealed_read(c, STAMP_FILE, STAMP_DOMAIN, 256, &len);
	int n;

	if (text != NULL && kt_cache_boot_id(boot_id) == 0 &&
	    (n = snprintf(want, sizeof(want), "boot_id %s\nsource %s\nstarted ", boot_id,
	                  source)) > 0 && (size_t)n < sizeof(want)) {
		wl = (size_t)n;
		if (len > wl + 1 && memcmp(text, want, wl) == 0 && text[len - 1] == '\n') {
			text[len - 1] = '\0';
			if (!kt_parse_uint(text + wl, 0, INT64_MAX, &at))
				at = 0;
		}
	}
	free(text);
	return (long long)at;
}

bool kt_jwks_fetch_slot(const struct kt_cache *c, const char *source, long long deadline_ms,
                        int *lockfd)
{
	char boot_id[40], text[128 + KT_JWKS_SOURCE_SIZE];
	long long now;
	int fd, n;

	*lockfd = -1;
	if (c->dirfd < 0 || kt_cache_boot_id(boot_id) < 0)
		return false;
	fd = kt_cache_open_private(c->dirfd, LOCK_FILE, O_RDWR | O_CREAT, 0);
	if (fd < 0)
		return false;
	/* a fetch in progress elsewhere: wait for it, then the caller reloads its result */
	while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		struct timespec pause = { 0, LOCK_POLL_NS };

		if ((errno != EWOULDBLOCK && errno != EINTR) ||
		    kt_clock_ms(CLOCK_MONOTONIC) >= deadline_ms) {
			close(fd);
			return false;
		}
		nanosleep(&pause, NULL);
	}
	now = kt_clock_ms(CLOCK_BOOTTIME);
	if (last_fetch(c, source) != 0 && now - last_fetch(c, source) < KT_JWKS_REFETCH_MS) {
		close(fd);
		return false;
	}
	n = snprintf(text, sizeof(text), "boot_id %s\nsource %s\nstarted %lld\n", boot_id, source,
	             now);
	if (n < 0 || (size_t)n >= sizeof(text) ||
	    kt_sealed_write(c, STAMP_FILE, STAMP_DOMAIN, text, (size_t)n) < 0) {
		close(fd);   /* no stamp, no fetch: the limit must hold */
		return false;
	}
	*lockfd = fd;
	return true;
}
