/* TokenReview: the request we send and the strict validation of the reply (docs/design.md §6). */
#ifndef KT_REVIEW_H
#define KT_REVIEW_H

#include <stddef.h>

#include "identity.h"
#include "reason.h"
#include "secure.h"

#define KT_REPLY_MAX      (64 * 1024)  /* bytes; the transfer is cut beyond this */
#define KT_REPLY_MAX_DEPTH 16          /* json nesting accepted in a reply */
#define KT_SERVER_ERROR_MAX 200        /* chars of status.error kept, escaped */

/*
 * Builds {"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview",
 *         "spec":{"token":TOKEN,"audiences":[...]}} with json-c.
 * *out holds it, NUL-terminated (release it with kt_secret_free).
 */
enum kt_reason kt_review_build_request(const char *token, size_t token_len,
                                       char *const *audiences, size_t n_audiences,
                                       struct kt_secret *out);

/*
 * Validates a reply body (HTTP status and content type are checked by the caller).
 * KT_R_OK: authenticated ServiceAccount, *id filled (caller frees with kt_identity_free).
 * KT_R_UNAUTHENTICATED: a well-formed TokenReview saying "not authenticated";
 *    server_error (if non-NULL, size >= KT_SERVER_ERROR_MAX+1) receives status.error,
 *    control characters escaped and capped, or "" when absent.
 * KT_R_AUDIENCE, KT_R_NOT_SERVICEACCOUNT, KT_R_BAD_IDENTITY: authenticated but not acceptable.
 * KT_R_MALFORMED_REPLY: anything not strictly a well-typed TokenReview.
 * KT_R_NOMEM.
 */
enum kt_reason kt_review_parse_reply(const char *body, size_t len,
                                     char *const *audiences, size_t n_audiences,
                                     struct kt_identity *id, char *server_error);

#endif
