/*
 * k8stoken-review: the module's network helper. Run by the module (never setuid)
 * with a fixed environment; reads the token on stdin, sends one TokenReview with
 * libcurl, writes a helper_proto record on stdout. Usage:
 *   k8stoken-review --conf PATH [--server N] [--access USER SERVICE | --access-selftest]
 * --access adds the local rules and one SubjectAccessReview after a successful review
 * (docs/design.md §10); --access-selftest sends only a SelfSubjectAccessReview.
 */
#include <curl/curl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "config.h"
#include "helper_proto.h"
#include "http.h"
#include "io.h"
#include "json_strict.h"
#include "jwks_fetch.h"
#include "number.h"
#include "review.h"
#include "rules.h"
#include "secure.h"
#include "trusted_owner.h"

/* Nothing from whoever started us may steer libcurl or OpenSSL (proxies, key logs, CA paths). */
static void harden_process(void)
{
	struct rlimit no_core = { 0, 0 };

	clearenv();
	setenv("PATH", "/usr/bin:/bin", 1);
	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

static int emit(const struct kt_helper_result *r)
{
	char header[KT_PROTO_HEADER_MAX];
	size_t n = kt_proto_format_header(r, header, sizeof(header));

	if (n == 0 || kt_write_all(1, header, n) < 0 || kt_write_all(1, r->body.p, r->body.len) < 0 ||
	    kt_write_all(1, "end\n", 4) < 0)
		return 1;
	return 0;
}

/* Adds obj[key] (present and not null) to out under the same key, shared by reference. */
static int copy_member(json_object *obj, const char *key, json_object *out)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(obj, key, &v) || v == NULL)
		return 0;
	if (json_object_object_add(out, key, json_object_get(v)) != 0) {
		json_object_put(v);
		return -1;
	}
	return 0;
}

/* Adds a fresh object out[key]; NULL when it cannot. */
static json_object *add_object(json_object *out, const char *key)
{
	json_object *o = json_object_new_object();

	if (o != NULL && json_object_object_add(out, key, o) != 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* status.user with only what the module reads: username, uid, groups, four extra keys. */
static int copy_user(json_object *user, json_object *out)
{
	static const char *const extras[] = {
		"authentication.kubernetes.io/credential-id", "authentication.kubernetes.io/pod-name",
		"authentication.kubernetes.io/pod-uid", "authentication.kubernetes.io/node-name",
	};
	json_object *extra = NULL, *extra_out;

	if (copy_member(user, "username", out) < 0 || copy_member(user, "uid", out) < 0 ||
	    copy_member(user, "groups", out) < 0)
		return -1;
	if (!json_object_object_get_ex(user, "extra", &extra) || extra == NULL)
		return 0;
	if ((extra_out = add_object(out, "extra")) == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(extras) / sizeof(extras[0]); i++)
		if (copy_member(extra, extras[i], extra_out) < 0)
			return -1;
	return 0;
}

/* {"apiVersion","kind","status":{authenticated, error, audiences, user}} of a validated reply. */
static json_object *status_only(json_object *reply)
{
	json_object *out = json_object_new_object(), *status = NULL, *status_out, *user = NULL,
	            *user_out, *v;

	if (out == NULL)
		return NULL;
	if ((v = json_object_new_string("authentication.k8s.io/v1")) == NULL ||
	    json_object_object_add(out, "apiVersion", v) != 0 ||
	    (v = json_object_new_string("TokenReview")) == NULL ||
	    json_object_object_add(out, "kind", v) != 0)
		goto fail;
	if (!json_object_object_get_ex(reply, "status", &status) || status == NULL ||
	    (status_out = add_object(out, "status")) == NULL)
		goto fail;
	if (copy_member(status, "authenticated", status_out) < 0 ||
	    copy_member(status, "error", status_out) < 0 ||
	    copy_member(status, "audiences", status_out) < 0)
		goto fail;
	if (json_object_object_get_ex(status, "user", &user) && user != NULL &&
	    ((user_out = add_object(status_out, "user")) == NULL || copy_user(user, user_out) < 0))
		goto fail;
	return out;
fail:
	json_object_put(out);
	return NULL;
}

/*
 * kube-apiserver echoes spec.token in its reply: the reply itself never leaves this
 * process, so no copy of the token reaches the host process (sshd, sudo) that runs the
 * module. It is validated here exactly as the module will (a reply that is not a
 * well-formed TokenReview is answered with that reason and no body), and the body
 * becomes a TokenReview re-built from the status fields the module reads.
 */
static void forward_status_only(const struct kt_config *cfg, struct kt_helper_result *res)
{
	struct kt_identity id;
	json_object *reply = NULL, *minimal = NULL;
	const char *text;
	size_t text_len = 0;
	struct kt_secret body = { 0 };
	enum kt_reason verdict;

	verdict = kt_review_parse_reply(res->body.p, res->body.len, cfg->audiences, cfg->n_audiences,
	                                &id, NULL);
	kt_identity_free(&id);
	if (verdict == KT_R_OK || verdict == KT_R_UNAUTHENTICATED || verdict == KT_R_AUDIENCE ||
	    verdict == KT_R_NOT_SERVICEACCOUNT || verdict == KT_R_BAD_IDENTITY) {
		verdict = KT_R_NOMEM;   /* the body passed kt_review_parse_reply: only memory can fail */
		if (kt_json_parse_object(res->body.p, res->body.len, KT_REPLY_MAX_DEPTH, &reply) == KT_R_OK) {
			kt_json_scrub_echoed_token(reply);
			minimal = status_only(reply);
		}
		text = minimal != NULL ? json_object_to_json_string_length(minimal,
		           JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &text_len) : NULL;
		if (text != NULL && text_len <= KT_REPLY_MAX &&
		    kt_secret_dup(&body, text, text_len) == 0)
			verdict = KT_R_OK;
		json_object_put(minimal);
		json_object_put(reply);
	}
	kt_helper_result_free(res);
	res->reason = verdict;
	if (verdict == KT_R_OK)
		res->body = body;
}

/* What the module asked for besides the TokenReview (trailing arguments, docs/design.md §10). */
struct access_request {
	const char *user;      /* --access USER SERVICE: a SubjectAccessReview for this login */
	const char *service;
	bool selftest;         /* --access-selftest: may our credential create subjectaccessreviews? */
};

/* Takes the trailing access arguments off argv; returns the count of the others. */
static int take_access_args(int argc, char **argv, struct access_request *ar)
{
	if (argc >= 6 && strcmp(argv[argc - 3], "--access") == 0) {
		ar->user = argv[argc - 2];
		ar->service = argv[argc - 1];
		return argc - 3;
	}
	if (argc >= 4 && strcmp(argv[argc - 1], "--access-selftest") == 0) {
		ar->selftest = true;
		return argc - 1;
	}
	return argc;
}

/* A failed SubjectAccessReview replaces the reviewed identity: nothing is let in. */
static void access_failed(struct kt_helper_result *res, const struct kt_helper_result *sar)
{
	kt_helper_result_free(res);
	res->reason = sar->reason;
	res->http_status = sar->http_status;
	res->server_index = sar->server_index;
	snprintf(res->detail, sizeof(res->detail), "SubjectAccessReview: %.200s",
	         sar->detail[0] != '\0' ? sar->detail : "reply refused");
}

/* Sends request (a (Self)SubjectAccessReview) and validates the reply into sar->reason. */
static void send_access_review(const struct kt_config *cfg, int only, const char *bearer,
                               const char *path, const struct kt_secret *request,
                               long long deadline, struct kt_helper_result *sar)
{
	char reason[KT_ACCESS_REASON_MAX + 1] = "";

	kt_http_post(cfg, only, bearer, path, request->p, request->len, deadline, sar);
	if (sar->reason != KT_R_OK)
		return;
	sar->reason = kt_access_parse_reply(sar->body.p, sar->body.len, request->p, request->len,
	                                    reason);
	kt_helper_result_free(sar);
	if (sar->reason == KT_R_ACCESS_DENIED)
		snprintf(sar->detail, sizeof(sar->detail), "%s", reason);
	else if (sar->reason == KT_R_MALFORMED_REPLY)
		snprintf(sar->detail, sizeof(sar->detail), "not a well-formed answer to our request");
}

/*
 * After a successful review (res: ok with the rebuilt TokenReview): the local rules,
 * then one SubjectAccessReview within the same deadline. res ends as ok (allowed),
 * access_denied, deny_rule or not_mapped with the identity, or the SubjectAccessReview's
 * failure without it. Only ok may be cached by the module.
 */
static void review_access(const struct kt_config *cfg, int only, const char *bearer,
                          const char *user, const struct kt_secret *request,
                          long long deadline, struct kt_helper_result *res)
{
	struct kt_helper_result sar;
	struct kt_identity id;
	unsigned line = 0;
	enum kt_reason r;

	r = kt_review_parse_reply(res->body.p, res->body.len, cfg->audiences, cfg->n_audiences,
	                          &id, NULL);
	if (r == KT_R_OK)   /* a login the local rules refuse costs no request */
		r = kt_rules_decide(cfg->rules, cfg->n_rules, &id, user, &line);
	kt_identity_free(&id);
	if (r != KT_R_OK) {
		if (!kt_access_reason_has_identity(r))
			kt_helper_result_free(res);
		res->reason = r;
		return;
	}
	send_access_review(cfg, only, bearer, KT_SAR_PATH, request, deadline, &sar);
	if (sar.reason == KT_R_ACCESS_DENIED) {
		res->reason = KT_R_ACCESS_DENIED;
		res->http_status = sar.http_status;
		snprintf(res->detail, sizeof(res->detail), "%s", sar.detail);
	} else if (sar.reason != KT_R_OK) {
		access_failed(res, &sar);
	}
	kt_helper_result_free(&sar);
}

/* k8stoken selftest: ok when the reviewer may create subjectaccessreviews, else why not. */
static void access_selftest(const struct kt_config *cfg, int only, const char *bearer,
                            long long deadline, struct kt_helper_result *res)
{
	struct kt_secret request;

	memset(res, 0, sizeof(*res));
	res->reason = kt_access_build_self_request(&request);
	if (res->reason == KT_R_OK)
		send_access_review(cfg, only, bearer, KT_SSAR_PATH, &request, deadline, res);
	kt_secret_free(&request);
}

/* Reads the whole token from stdin; more than max bytes is refused. 0, or -1 (token empty). */
static int read_token(size_t max, struct kt_secret *token)
{
	if (kt_secret_alloc(token, max + 2) < 0)
		return -1;
	if (kt_secret_read(token, 0) < 0 || token->len > max) {
		kt_secret_free(token);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct kt_config cfg;
	struct kt_helper_result res = { .reason = KT_R_HELPER };
	char err[512];
	struct kt_secret token = { 0 }, bearer = { 0 }, request = { 0 }, sar_request = { 0 };
	int only = -1, rc;
	struct access_request ar = { 0 };
	struct kt_access_attrs attrs;
	enum kt_reason sar_rc = KT_R_OK;
	/* one deadline for the TokenReview and the SubjectAccessReview together */
	long long deadline = kt_clock_ms(CLOCK_MONOTONIC);
	int nargs;
	unsigned long long server;
	bool fetch_keys = false;

	harden_process();
	kt_config_init(&cfg);
	/* --jwks: fetch the cluster's key set instead of a review (docs/design.md §6.3) */
	if (argc == 4 && strcmp(argv[3], "--jwks") == 0) {
		fetch_keys = true;
		argc = 3;
	}
	nargs = take_access_args(argc, argv, &ar);
	if (nargs == 5 && strcmp(argv[3], "--server") == 0) {
		if (!kt_parse_uint(argv[4], 0, INT_MAX, &server))
			goto usage;   /* never read as server 0, or as -1 (every server) */
		only = (int)server;
	} else if (nargs != 3) {
		goto usage;
	}
	if (strcmp(argv[1], "--conf") != 0)
		goto usage;

	if (kt_config_load(&cfg, argv[2], KT_TRUSTED_UID, err, sizeof(err)) != KT_R_OK) {
		res.reason = KT_R_CONFIG;
		kt_escape(err, strlen(err), res.detail, sizeof(res.detail));
		goto out;
	}
	if (only >= (int)cfg.n_servers) {
		res.reason = KT_R_CONFIG;
		snprintf(res.detail, sizeof(res.detail), "no server number %d", only);
		goto out;
	}
	deadline += (long long)cfg.timeout * 1000;
	if (ar.user != NULL && !cfg.access_review) {
		res.reason = KT_R_CONFIG;   /* the module read access_review = yes: never skip it */
		snprintf(res.detail, sizeof(res.detail), "access_review is not enabled");
		goto out;
	}
	if (ar.user != NULL &&
	    kt_access_render(&cfg, ar.user, ar.service, &attrs, res.detail, sizeof(res.detail)) != KT_R_OK) {
		res.reason = KT_R_CONFIG;
		goto out;
	}
	if (read_token(cfg.max_token_size, &token) < 0) {
		res.reason = KT_R_TOKEN_TOO_LONG;
		goto out;
	}
	res.reason = kt_http_load_credential(&cfg, &bearer, res.detail, sizeof(res.detail));
	if (res.reason != KT_R_OK)
		goto out;
	if (fetch_keys) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			res.reason = KT_R_SYSTEM;
		else
			kt_jwks_fetch(&cfg, bearer.p, &res);
		goto out;
	}
	if (ar.selftest) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			res.reason = KT_R_SYSTEM;
		else
			access_selftest(&cfg, only, bearer.p, deadline, &res);
		goto out;
	}
	res.reason = kt_review_build_request(token.p, token.len, cfg.audiences, cfg.n_audiences,
	                                     &request);
	if (res.reason != KT_R_OK)
		goto out;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		res.reason = KT_R_SYSTEM;
		goto out;
	}
	kt_http_review(&cfg, only, bearer.p, request.p, request.len, &res);
	/* from the reply as received: spec.extra exactly as the TokenReview gave it */
	if (res.reason == KT_R_OK && ar.user != NULL)
		sar_rc = kt_access_build_request(res.body.p, res.body.len, &attrs, &sar_request);
	if (res.reason == KT_R_OK)
		forward_status_only(&cfg, &res);
	if (res.reason == KT_R_OK && ar.user != NULL && sar_rc != KT_R_OK) {
		kt_helper_result_free(&res);
		res.reason = sar_rc;
	} else if (res.reason == KT_R_OK && ar.user != NULL) {
		review_access(&cfg, only, bearer.p, ar.user, &sar_request, deadline, &res);
	}
out:
	rc = emit(&res);
	kt_helper_result_free(&res);
	kt_secret_free(&request);
	kt_secret_free(&sar_request);
	kt_secret_free(&bearer);
	kt_secret_free(&token);
	kt_config_free(&cfg);
	return rc;
usage:
	fprintf(stderr, "usage: k8stoken-review --conf PATH [--server N] "
	                "[--access USER SERVICE | --access-selftest]\n"
	                "Run by pam_k8stoken; reads a token on stdin.\n");
	kt_config_free(&cfg);
	return 2;
}
