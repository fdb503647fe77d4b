/*
 * The cluster's public keys (a JWKS, RFC 7517) for local verification (docs/design.md §6.3):
 * strict parsing into OpenSSL keys, and the key set kept in the cache directory.
 */
#ifndef KT_JWKS_H
#define KT_JWKS_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

#include "cache.h"
#include "config.h"
#include "reason.h"

#define KT_JWKS_MAX       (64 * 1024)   /* bytes of a key set document */
#define KT_JWKS_MAX_KEYS  32
#define KT_JWKS_KID_MAX   128           /* kube's kid: 43 characters */
#define KT_JWKS_ISSUER_MAX 512
#define KT_JWKS_REFETCH_MS 60000        /* host-wide: at most one fetch a minute */
#define KT_JWKS_FILE      "jwks"        /* in the cache directory */
#define KT_JWKS_SOURCE_SIZE 33          /* 32 hex digits and the NUL */

enum kt_jwk_type { KT_JWK_RSA, KT_JWK_EC };

struct kt_jwk {
	char kid[KT_JWKS_KID_MAX + 1];   /* "" when the key has none */
	enum kt_jwk_type type;
	char ec_alg[8];                  /* EC: ES256, ES384 or ES512 (from the curve) */
	EVP_PKEY *pkey;                  /* built only for the keys asked for (kid filter) */
};

struct kt_jwks {
	struct kt_jwk keys[KT_JWKS_MAX_KEYS];
	size_t n;
};

/*
 * Parses a key set: an object whose "keys" is an array of 1..KT_JWKS_MAX_KEYS public keys,
 * RSA with a 2048-, 3072- or 4096-bit modulus and a small odd exponent, or EC on P-256,
 * P-384 or P-521 (the point on the curve is checked for the keys built); "use" sig if given, "alg" one kube signs with
 * and fits the key, kids unique, no private members. Anything else refuses the whole set
 * (KT_R_MALFORMED_REPLY, why says what). OpenSSL keys are built only for keys whose kid
 * equals want_kid ("" = keys without a kid), or for all keys when want_kid is NULL.
 */
enum kt_reason kt_jwks_parse(const char *text, size_t len, const char *want_kid,
                             struct kt_jwks *set, char *why, size_t whylen);
void kt_jwks_free(struct kt_jwks *set);

/* A key set as kept in the cache directory (sealed file KT_JWKS_FILE). */
struct kt_jwks_stored {
	long long fetched_ms;                  /* CLOCK_BOOTTIME of the fetch */
	char issuer[KT_JWKS_ISSUER_MAX + 1];   /* the discovery document's issuer */
	char *document;                        /* the JWKS text, NUL-terminated */
	size_t document_len;
};

/*
 * Where a key set comes from: a digest of the server list and jwks_uri. A stored set and
 * the fetch rate limit belong to one source, so a host pointed at another cluster neither
 * uses the old cluster's keys nor waits for the old cluster's fetch slot.
 */
void kt_jwks_source(const struct kt_config *cfg, char out[KT_JWKS_SOURCE_SIZE]);

/* Stores a validated key set of source; 0 or -1. */
int kt_jwks_store(const struct kt_cache *c, const char *source, const char *issuer,
                  const char *document, size_t len);
/* Loads it: 0, or -1 when missing, forged, from another boot, of another source or malformed. */
int kt_jwks_load(const struct kt_cache *c, const char *source, struct kt_jwks_stored *st);
void kt_jwks_stored_free(struct kt_jwks_stored *st);

/*
 * Host-wide rate limit of fetches: true (and the slot is taken) when no fetch of source was
 * started in the last KT_JWKS_REFETCH_MS. *lockfd receives a lock held while the caller fetches
 * (release with kt_cache_unlock); a concurrent caller waits for it until deadline_ms
 * (CLOCK_MONOTONIC) and then gets false, to reload what the fetch stored.
 */
bool kt_jwks_fetch_slot(const struct kt_cache *c, const char *source, long long deadline_ms,
                        int *lockfd);

#endif
