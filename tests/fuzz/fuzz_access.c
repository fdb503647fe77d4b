/*
 * The SubjectAccessReview reply validation (access.c kt_access_parse_reply, docs/design.md
 * §10) on arbitrary reply bodies, against the SelfSubjectAccessReview request the tool sends.
 * Invariants: the outcome is ok, access_denied, malformed_reply or reply_too_large; the
 * reason text is printable, bounded and empty unless access_denied; a reply that decides
 * (ok or access_denied) passed the strict JSON lexer.
 */
#include <string.h>

#include "access.h"
#include "fuzz.h"
#include "json_strict.h"
#include "review.h"
#include "secure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kt_secret request;
	char reason[KT_ACCESS_REASON_MAX + 1];
	size_t members;
	enum kt_reason r;

	if (request.p == NULL)
		FUZZ_ASSERT(kt_access_build_self_request(&request) == KT_R_OK);
	memset(reason, 'x', sizeof(reason));
	reason[sizeof(reason) - 1] = '\0';
	r = kt_access_parse_reply((const char *)data, size, request.p, request.len, reason);
	FUZZ_ASSERT(r == KT_R_OK || r == KT_R_ACCESS_DENIED || r == KT_R_MALFORMED_REPLY ||
	            r == KT_R_REPLY_TOO_LARGE);
	FUZZ_ASSERT(strlen(reason) <= KT_ACCESS_REASON_MAX && fuzz_printable(reason, strlen(reason)));
	if (r != KT_R_ACCESS_DENIED)
		FUZZ_ASSERT(reason[0] == '\0');
	if (r == KT_R_OK || r == KT_R_ACCESS_DENIED)
		FUZZ_ASSERT(kt_json_lex(data, size, KT_REPLY_MAX_DEPTH, &members));
	return 0;
}
