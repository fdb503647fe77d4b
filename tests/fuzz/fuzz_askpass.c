/*
 * k8stoken-askpass's part selection (askpass.c, docs/design.md §5.2), compiled in with its
 * main renamed. Input: byte 0-1 the part size (1..1023), then a NUL-terminated prompt,
 * then the token text. Invariants:
 *   - the parts 1, 2, ... up to the first empty one join back into the token exactly;
 *   - every part is 1..size characters, and no boundary lies where the text so far is a
 *     COMPLETE token shorter than the whole (the module would stop asking there);
 *   - the split fails only when such a boundary cannot be avoided;
 *   - the prompt selects part 0 (not ours) or 1..100000; the password-prompt limit is 0,
 *     sudo's 511 or ssh's 1,023.
 */
#define main askpass_main
#include "askpass.c"
#undef main

#include "fuzz.h"

#define FUZZ_TOKEN_MAX 2048

static void check_parts(const char *tok, size_t len, size_t size)
{
	size_t joined = 0, start = 0, plen = 0;
	long part;

	for (part = 1;; part++) {
		if (find_part(tok, len, size, part, &start, &plen) != 0) {
			/* no boundary possible: some prefix within size of the last one is COMPLETE */
			FUZZ_ASSERT(part >= 1 && len - joined > size);
			return;
		}
		if (plen == 0) {
			FUZZ_ASSERT(start == len);
			break;
		}
		FUZZ_ASSERT(start == joined && plen <= size);
		joined += plen;
		FUZZ_ASSERT(joined <= len);
		if (joined < len)
			FUZZ_ASSERT(kt_token_shape(tok, joined) != KT_SHAPE_COMPLETE);
		FUZZ_ASSERT(part < 100000);
	}
	FUZZ_ASSERT(joined == len);
	/* past the last part: empty, every time */
	FUZZ_ASSERT(find_part(tok, len, size, part + 1, &start, &plen) == 0 && plen == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul;
	char *prompt, *tok;
	size_t part_size, len, limit;
	long want;

	if (size < 2)
		return 0;
	part_size = ((size_t)data[0] << 8 | data[1]) % MAX_PART_SIZE + 1;
	nul = memchr(data + 2, '\0', size - 2);
	if (nul == NULL)
		return 0;
	prompt = fuzz_cstr(data + 2, (size_t)(nul - data - 2));
	want = wanted_part(prompt);
	FUZZ_ASSERT(want >= 0 && want <= MAX_PART_NUMBER);
	FUZZ_ASSERT(want == 0 || strstr(prompt, PROMPT_MARK) != NULL);
	limit = password_prompt_limit(prompt, 0);
	FUZZ_ASSERT(limit == 0 || limit == SUDO_MAX_ANSWER || limit == SSH_MAX_ANSWER);
	FUZZ_ASSERT(password_prompt_limit(prompt, 1) == (limit == 0 ? 0 : SUDO_MAX_ANSWER));
	free(prompt);

	len = size - (size_t)(nul - data) - 1;
	if (len == 0 || len > FUZZ_TOKEN_MAX)
		return 0;
	tok = fuzz_cstr(nul + 1, len);
	/* at most 16 parts (the module takes 64): quadratic in the parts, and real tokens need 3 */
	if (part_size * 16 < len)
		part_size = (len + 15) / 16;
	check_parts(tok, len, part_size);
	free(tok);
	return 0;
}
