/*
 * kt_token_check and kt_token_shape (pam_k8stoken/core/token.c, docs/design.md §4.1, §5.1) on
 * arbitrary text. Invariants:
 *   - an accepted token (KT_R_OK) is COMPLETE for kt_token_shape, and only then;
 *   - an accepted token is three non-empty segments of [A-Za-z0-9_-], its alg is one of the
 *     nine allowed, and a max_len one below its length makes it token_too_long;
 *   - no prefix (from "eyJ" on) of an accepted token that starts like one is NOT_TOKEN:
 *     the module would stop asking for parts before the token is whole;
 *   - the reasons are only empty_token, token_too_long, not_jwt or ok.
 */
#include <string.h>

#include "fuzz.h"
#include "token.h"

static const char *const algs[] = { "RS256", "RS384", "RS512", "PS256", "PS384",
                                    "PS512", "ES256", "ES384", "ES512" };

static int allowed_alg(const char *alg)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(alg, algs[i]) == 0)
			return 1;
	return 0;
}

static void check_accepted_shape(const char *t, size_t n, const struct kt_token_info *info)
{
	size_t dots = 0, seg = 0;

	for (size_t i = 0; i < n; i++) {
		char c = t[i];

		if (c == '.') {
			FUZZ_ASSERT(seg > 0);
			dots++;
			seg = 0;
			continue;
		}
		FUZZ_ASSERT((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		            c == '-' || c == '_');
		seg++;
	}
	FUZZ_ASSERT(dots == 2 && seg > 0);
	FUZZ_ASSERT(allowed_alg(info->alg));
	FUZZ_ASSERT(kt_token_check(t, n, n - 1, NULL) == KT_R_TOKEN_TOO_LONG);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *t = (const char *)data;
	struct kt_token_info info;
	enum kt_reason r = kt_token_check(t, size, 16384, &info);
	enum kt_token_shape shape = kt_token_shape(t, size);

	FUZZ_ASSERT(r == KT_R_OK || r == KT_R_EMPTY_TOKEN || r == KT_R_TOKEN_TOO_LONG ||
	            r == KT_R_NOT_JWT);
	FUZZ_ASSERT(shape == KT_SHAPE_COMPLETE || shape == KT_SHAPE_PARTIAL ||
	            shape == KT_SHAPE_NOT_TOKEN);
	if (r == KT_R_OK) {
		FUZZ_ASSERT(shape == KT_SHAPE_COMPLETE);
		check_accepted_shape(t, size, &info);
	} else if (r == KT_R_NOT_JWT || r == KT_R_EMPTY_TOKEN) {
		FUZZ_ASSERT(shape != KT_SHAPE_COMPLETE);
	}
	if (r == KT_R_OK) {
		/* every prefix can still become this token: never NOT_TOKEN (parts, §5.1) */
		for (size_t cut = 3; cut < size; cut += 1 + cut / 16)
			FUZZ_ASSERT(kt_token_shape(t, cut) != KT_SHAPE_NOT_TOKEN ||
			            memcmp(t, "eyJ", 3) != 0);
	}
	return 0;
}
