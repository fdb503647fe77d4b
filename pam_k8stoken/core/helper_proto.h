/*
 * The record the review helper writes to the module on stdout:
 *
 *   kt-review/1\n
 *   reason NAME\n          (kt_reason_name)
 *   http CODE\n            (0 when no HTTP answer)
 *   server INDEX\n         (server line that gave the final answer, from 0)
 *   detail TEXT\n          (why, as kt_escape writes it: printable ASCII; may be empty)
 *   body LEN\n
 *   LEN bytes of reply body (only when reason is ok, or access_denied, deny_rule or
 *   not_mapped after a successful review with --access: docs/design.md §10)
 *   end\n
 *
 * A record whose detail is not such text is refused. The module holds the detail as the text
 * it stands for (kt_unescape, spawn.c), an untrusted value its log writer escapes again.
 * The trailing "end" proves the record is whole. The module also requires exit status
 * 0 when it can see it (a host SIGCHLD handler may reap the helper first: then the
 * record alone counts). The body is never the API server's reply as received (which
 * echoes spec.token): the helper validates that reply and forwards a TokenReview
 * re-built from its status alone (review_helper.c).
 */
#ifndef KT_HELPER_PROTO_H
#define KT_HELPER_PROTO_H

#include <stddef.h>

#include "reason.h"
#include "secure.h"

#define KT_PROTO_DETAIL_MAX 256
#define KT_PROTO_HEADER_MAX 1024

struct kt_helper_result {
	enum kt_reason reason;
	long http_status;
	unsigned server_index;
	char detail[KT_PROTO_DETAIL_MAX];
	struct kt_secret body;   /* secret-bearing: released by kt_helper_result_free */
};

/* Formats the header part (up to and including "body LEN\n") into out. Returns its length, 0 if it does not fit. */
size_t kt_proto_format_header(const struct kt_helper_result *r, char *out, size_t outlen);

/*
 * Parses a complete record held in buf[0..len). On success fills *r (body copied
 * into a fresh allocation) and returns KT_R_OK; a truncated or malformed record
 * (or an allocation failure) gives KT_R_HELPER.
 */
enum kt_reason kt_proto_parse(const char *buf, size_t len, struct kt_helper_result *r);

void kt_helper_result_free(struct kt_helper_result *r);

#endif
