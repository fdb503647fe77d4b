/* The helper's HTTPS client: POSTs with ordered server failover, and its transport rules. */
#ifndef KT_HTTP_H
#define KT_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "helper_proto.h"

/*
 * Reads the reviewer credential named by cfg (bearer token file: regular, root-owned,
 * no group/other access, <= 64 KiB, one optional trailing newline, bytes 0x21..0x7e).
 * *out is the token (release it with kt_secret_free), or empty (out->p NULL) when cfg uses
 * a client certificate (whose key file passes the same ownership checks).
 */
enum kt_reason kt_http_load_credential(const struct kt_config *cfg, struct kt_secret *out,
                                       char *detail, size_t detail_len);

/* "Authorization: Bearer TOKEN" for bearer into *out (empty for NULL). 0, or -1 out of memory. */
int kt_http_bearer_header(const char *bearer, struct kt_secret *out);

/*
 * A libcurl handle with the helper's transport rules: https only, the cluster CA alone
 * (no system store), TLS 1.2 or later, no redirects, no proxy, HTTP/1.1, the connect
 * deadline and timeout_ms; the client certificate only with_credential. NULL when out of
 * memory. The caller sets the URL, headers and body, and cleans it up.
 */
CURL *kt_http_handle(const struct kt_config *cfg, bool with_credential, long timeout_ms);

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
