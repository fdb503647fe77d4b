/* Runs the review helper for one token, under a deadline the module enforces. */
#ifndef KT_SPAWN_H
#define KT_SPAWN_H

#include <stddef.h>

#include "helper_proto.h"

/*
 * Starts `helper --conf conf_path [--server N]` (only >= 0) with a fixed environment,
 * sends the token on its stdin, reads its record from stdout. If the record is not
 * complete within deadline_ms the helper is killed and res->reason is KT_R_TIMEOUT.
 * Reaps only its own child and tolerates a host that reaps it first.
 * Returns res->reason; res->body must be released with kt_helper_result_free.
 */
enum kt_reason kt_spawn_review(const char *helper, const char *conf_path, int only,
                               const char *token, size_t token_len, long deadline_ms,
                               struct kt_helper_result *res);

#define KT_SPAWN_EXTRA_MAX 4

/*
 * The same with extra arguments after the standard ones (NULL-terminated, at most
 * KT_SPAWN_EXTRA_MAX): "--access USER SERVICE" for the SubjectAccessReview, "--access-selftest".
 */
enum kt_reason kt_spawn_review_args(const char *helper, const char *conf_path, int only,
                                    const char *const *extra, const char *token,
                                    size_t token_len, long deadline_ms,
                                    struct kt_helper_result *res);

#endif
