/*
 * Host access from Kubernetes RBAC (docs/design.md §10): the SubjectAccessReview sent
 * after a successful TokenReview when access_review = yes, and the strict validation
 * of its reply. Pure code (no I/O but gethostname): the helper sends the request,
 * the module and the tool render the same attributes for the cache and the log.
 */
#ifndef KT_ACCESS_H
#define KT_ACCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "reason.h"
#include "secure.h"

#define KT_ACCESS_VALUE_MAX  253   /* bytes of one rendered attribute */
#define KT_ACCESS_REASON_MAX 200   /* chars of status.reason kept, escaped */

#define KT_ACCESS_DEFAULT_GROUP    "pam.k8stoken.io"
#define KT_ACCESS_DEFAULT_RESOURCE "hosts"
#define KT_ACCESS_DEFAULT_VERB     "login"
#define KT_ACCESS_DEFAULT_NAME     "%h"

#define KT_SAR_PATH  "/apis/authorization.k8s.io/v1/subjectaccessreviews"
#define KT_SSAR_PATH "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

/* spec.resourceAttributes of one SubjectAccessReview; "" means not sent. */
struct kt_access_attrs {
	char namespace_[KT_ACCESS_VALUE_MAX + 1];
	char group[KT_ACCESS_VALUE_MAX + 1];
	char resource[KT_ACCESS_VALUE_MAX + 1];
	char subresource[KT_ACCESS_VALUE_MAX + 1];
	char verb[KT_ACCESS_VALUE_MAX + 1];
	char name[KT_ACCESS_VALUE_MAX + 1];
};

/* Configuration check of an access_* template: NULL when fine, else what is wrong. */
const char *kt_access_check_template(const char *v);
/* Configuration check of host_name: NULL when fine, else what is wrong. */
const char *kt_access_check_host_name(const char *v);

/*
 * Renders the access_* templates of cfg for local account `user` and PAM service
 * `service` (%h host, %u user, %s service, %% a percent sign). KT_R_CONFIG with the
 * cause in detail when a value renders empty, too long or unusable.
 */
enum kt_reason kt_access_render(const struct kt_config *cfg, const char *user,
                                const char *service, struct kt_access_attrs *a,
                                char *detail, size_t detail_len);

/* "verb=login group=pam.k8stoken.io resource=hosts name=bastion-1" (set fields only). */
void kt_access_describe(const struct kt_access_attrs *a, char *out, size_t outlen);

/*
 * Builds the SubjectAccessReview for the identity of a TokenReview reply as received
 * (tokenreview[0..len), not yet trusted: the caller validates it separately): spec.user,
 * spec.groups, spec.uid and spec.extra exactly as status.user holds them, and the
 * attributes. The echoed spec.token is zeroed in json-c's copy and never copied.
 * *out holds it, NUL-terminated (release it with kt_secret_free).
 */
enum kt_reason kt_access_build_request(const char *tokenreview, size_t len,
                                       const struct kt_access_attrs *a, struct kt_secret *out);

/* The SelfSubjectAccessReview `k8stoken selftest` sends: may we create subjectaccessreviews? */
enum kt_reason kt_access_build_self_request(struct kt_secret *out);

/*
 * Validates a (Self)SubjectAccessReview reply body as strictly as review.c does a
 * TokenReview's, and requires its spec to equal the request's spec. KT_R_OK: allowed.
 * KT_R_ACCESS_DENIED: allowed false (or denied true); reason (size >=
 * KT_ACCESS_REASON_MAX + 1, may be NULL) receives status.reason escaped and capped,
 * with status.evaluationError after it. KT_R_MALFORMED_REPLY, KT_R_REPLY_TOO_LARGE,
 * KT_R_NOMEM otherwise.
 */
enum kt_reason kt_access_parse_reply(const char *body, size_t len, const char *request,
                                     size_t request_len, char *reason);

/* Reasons the helper sends with the TokenReview's identity (the body): the login got past it. */
bool kt_access_reason_has_identity(enum kt_reason r);

#endif
