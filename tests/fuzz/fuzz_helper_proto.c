/*
 * The record the helper writes to the module (helper_proto.c, docs/design.md §2.1): the
 * module parses it from a process it does not trust to be whole. Invariants:
 *   - the only outcomes are ok (a whole record) or helper_failed, never a partial result:
 *     a refused record leaves no body;
 *   - an accepted record names a known reason, http <= 999, server <= 64, a detail without
 *     newline, a body only for reason ok and at most KT_REPLY_MAX bytes, and it ends in
 *     "end\n" right after the body;
 *   - format then parse gives the same fields back (the helper's writer and the module's
 *     reader agree), and any shorter prefix of that record is refused.
 */
#include <string.h>

#include "access.h"
#include "fuzz.h"
#include "helper_proto.h"
#include "review.h"
#include "secure.h"

static void check_round_trip(const struct kt_helper_result *r)
{
	char header[KT_PROTO_HEADER_MAX];
	size_t n = kt_proto_format_header(r, header, sizeof(header)), total;
	struct kt_helper_result back;
	char *record;

	FUZZ_ASSERT(n > 0);
	total = n + r->body.len + 4;
	record = malloc(total);
	FUZZ_ASSERT(record != NULL);
	memcpy(record, header, n);
	if (r->body.len > 0)
		memcpy(record + n, r->body.p, r->body.len);
	memcpy(record + n + r->body.len, "end\n", 4);
	FUZZ_ASSERT(kt_proto_parse(record, total, &back) == KT_R_OK);
	FUZZ_ASSERT(back.reason == r->reason && back.http_status == r->http_status &&
	            back.server_index == r->server_index && strcmp(back.detail, r->detail) == 0 &&
	            back.body.len == r->body.len &&
	            (r->body.len == 0 || memcmp(back.body.p, r->body.p, r->body.len) == 0));
	kt_helper_result_free(&back);
	/* a record cut anywhere is not a record (a few cuts: the end, the body, the header) */
	for (size_t cut = total - 1; cut + 24 > total && cut > 0; cut--) {
		FUZZ_ASSERT(kt_proto_parse(record, cut, &back) == KT_R_HELPER && back.body.p == NULL);
		kt_helper_result_free(&back);
	}
	FUZZ_ASSERT(kt_proto_parse(record, n, &back) == KT_R_HELPER && back.body.p == NULL);
	free(record);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kt_helper_result r;
	enum kt_reason got = kt_proto_parse((const char *)data, size, &r);

	FUZZ_ASSERT(got == KT_R_OK || got == KT_R_HELPER);
	if (got != KT_R_OK) {
		FUZZ_ASSERT(r.body.p == NULL && r.body.len == 0 && r.reason == KT_R_HELPER);
		return 0;
	}
	FUZZ_ASSERT(r.reason < KT_R__COUNT && kt_reason_from_name(kt_reason_name(r.reason)) == r.reason);
	FUZZ_ASSERT(r.http_status >= 0 && r.http_status <= 999 && r.server_index <= 64);
	FUZZ_ASSERT(memchr(r.detail, '\0', sizeof(r.detail)) != NULL);
	FUZZ_ASSERT(strchr(r.detail, '\n') == NULL);
	FUZZ_ASSERT(r.body.p != NULL && r.body.len <= KT_REPLY_MAX);
	/* a body is the reviewed identity: with ok, or with a login the rules or RBAC stopped */
	FUZZ_ASSERT(r.body.len == 0 || kt_access_reason_has_identity(r.reason));
	FUZZ_ASSERT(size >= 4 && memcmp(data + size - 4, "end\n", 4) == 0);
	FUZZ_ASSERT(r.body.len == 0 || memcmp(data + size - 4 - r.body.len, r.body.p, r.body.len) == 0);
	check_round_trip(&r);
	kt_helper_result_free(&r);
	return 0;
}
