/*
 * The key-set parser (jwks.c kt_jwks_parse, docs/design.md §6.5) on arbitrary documents.
 * Invariants: a set is accepted whole or refused whole with a reason (its callers escape it
 * for the log); an accepted
 * set has 1..KT_JWKS_MAX_KEYS keys with distinct kids, every key built (want_kid NULL), EC
 * keys named ES256/ES384/ES512; parsing it again for one kid builds exactly the keys with
 * that kid.
 */
#include <openssl/evp.h>
#include <string.h>

#include "fuzz.h"
#include "jwks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kt_jwks set, one;
	char why[256] = "";
	enum kt_reason r;

	memset(&set, 0, sizeof(set));
	r = kt_jwks_parse((const char *)data, size, NULL, &set, why, sizeof(why));
	if (r != KT_R_OK) {
		FUZZ_ASSERT(set.n == 0 || set.keys[0].pkey == NULL);
		FUZZ_ASSERT(why[0] != '\0');
		kt_jwks_free(&set);
		return 0;
	}
	FUZZ_ASSERT(set.n >= 1 && set.n <= KT_JWKS_MAX_KEYS);
	for (size_t i = 0; i < set.n; i++) {
		FUZZ_ASSERT(set.keys[i].pkey != NULL);
		FUZZ_ASSERT(strlen(set.keys[i].kid) <= KT_JWKS_KID_MAX);
		if (set.keys[i].type == KT_JWK_EC)
			FUZZ_ASSERT(strcmp(set.keys[i].ec_alg, "ES256") == 0 ||
			            strcmp(set.keys[i].ec_alg, "ES384") == 0 ||
			            strcmp(set.keys[i].ec_alg, "ES512") == 0);
		for (size_t k = 0; k < i; k++)
			FUZZ_ASSERT(strcmp(set.keys[i].kid, set.keys[k].kid) != 0);
	}
	memset(&one, 0, sizeof(one));
	FUZZ_ASSERT(kt_jwks_parse((const char *)data, size, set.keys[0].kid, &one, why,
	                          sizeof(why)) == KT_R_OK);
	FUZZ_ASSERT(one.n == set.n);
	for (size_t i = 0; i < one.n; i++)
		FUZZ_ASSERT((one.keys[i].pkey != NULL) == (strcmp(one.keys[i].kid, set.keys[0].kid) == 0));
	kt_jwks_free(&one);
	kt_jwks_free(&set);
	return 0;
}
