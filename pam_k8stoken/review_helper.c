/*
 * k8stoken-review: the module's network helper. Run by the module (never setuid)
 * with a fixed environment; reads the token on stdin, sends one TokenReview with
 * libcurl, writes a helper_proto record on stdout. Usage:
 *   k8stoken-review --conf PATH [--server N]
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "helper_proto.h"
#include "http.h"
#include "io.h"
#include "review.h"
#include "secure.h"

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

	if (n == 0 || kt_write_all(1, header, n) < 0 || kt_write_all(1, r->body, r->body_len) < 0 ||
	    kt_write_all(1, "end\n", 4) < 0)
		return 1;
	return 0;
}

/* Reads the whole token from stdin; more than max bytes is refused. */
static char *read_token(size_t max, size_t *len)
{
	char *buf = malloc(max + 1);
	ssize_t n;

	if (buf == NULL)
		return NULL;
	n = kt_read_all(0, buf, max + 1);
	if (n < 0 || (size_t)n > max) {
		kt_free_secret(buf, max + 1);
		return NULL;
	}
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

int main(int argc, char **argv)
{
	struct kt_config cfg;
	struct kt_helper_result res = { .reason = KT_R_HELPER };
	char err[512];
	char *token = NULL, *bearer = NULL, *request = NULL;
	size_t token_len = 0, request_len = 0, token_cap = 0;
	int only = -1, rc;

	harden_process();
	kt_config_init(&cfg);
	if (argc == 5 && strcmp(argv[3], "--server") == 0)
		only = atoi(argv[4]);
	else if (argc != 3)
		goto usage;
	if (strcmp(argv[1], "--conf") != 0)
		goto usage;

	if (kt_config_load(&cfg, argv[2], 0, err, sizeof(err)) != KT_R_OK) {
		res.reason = KT_R_CONFIG;
		kt_escape(err, strlen(err), res.detail, sizeof(res.detail));
		goto out;
	}
	if (only >= (int)cfg.n_servers) {
		res.reason = KT_R_CONFIG;
		snprintf(res.detail, sizeof(res.detail), "no server number %d", only);
		goto out;
	}
	token_cap = cfg.max_token_size + 1;
	token = read_token(cfg.max_token_size, &token_len);
	if (token == NULL) {
		res.reason = KT_R_TOKEN_TOO_LONG;
		goto out;
	}
	res.reason = kt_http_load_credential(&cfg, &bearer, res.detail, sizeof(res.detail));
	if (res.reason != KT_R_OK)
		goto out;
	res.reason = kt_review_build_request(token, token_len, cfg.audiences, cfg.n_audiences,
	                                     &request, &request_len);
	if (res.reason != KT_R_OK)
		goto out;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		res.reason = KT_R_SYSTEM;
		goto out;
	}
	kt_http_review(&cfg, only, bearer, request, request_len, &res);
out:
	rc = emit(&res);
	kt_helper_result_free(&res);
	kt_free_secret(request, request_len);
	kt_free_secret_str(bearer);
	kt_free_secret(token, token_cap);
	kt_config_free(&cfg);
	return rc;
usage:
	fprintf(stderr, "usage: k8stoken-review --conf PATH [--server N]\n"
	                "Run by pam_k8stoken; reads a token on stdin.\n");
	kt_config_free(&cfg);
	return 2;
}
