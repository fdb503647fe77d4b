/* The helper's HTTPS client: one TokenReview POST with ordered server failover. */
#ifndef KT_HTTP_H
#define KT_HTTP_H

#include <stddef.h>

#include "config.h"
#include "helper_proto.h"

/*
 * Reads the reviewer credential named by cfg (bearer token file: regular, root-owned,
 * no group/other access, <= 64 KiB, one optional trailing newline, bytes 0x21..0x7e).
 * *out is the token (free with kt_free_secret_str), or NULL when cfg uses a client
 * certificate (whose key file passes the same ownership checks).
 */
enum kt_reason kt_http_load_credential(const struct kt_config *cfg, char **out,
                                       char *detail, size_t detail_len);

/*
 * POSTs body to each server in order (all of them, or only server `only` when
 * only >= 0) until one gives a 200/201 JSON answer, all within cfg->timeout.
 * Fills res (reason, http_status, server_index, detail, body on success).
 */
void kt_http_review(const struct kt_config *cfg, int only, const char *bearer,
                    const char *body, size_t body_len, struct kt_helper_result *res);

/*
 * The same ordered failover for another API path (the SubjectAccessReview), until
 * deadline_ms (CLOCK_MONOTONIC ms): the helper's one deadline for all its requests.
 */
void kt_http_post(const struct kt_config *cfg, int only, const char *bearer, const char *path,
                  const char *body, size_t body_len, long long deadline_ms,
                  struct kt_helper_result *res);

#endif
