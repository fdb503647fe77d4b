#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "breaker.h"
#include "http.h"
#include "io.h"
#include "private_file.h"
#include "review.h"
#include "secure.h"
#include "trusted_owner.h"

#define CREDENTIAL_MAX (64 * 1024)
#define USER_AGENT "pam_k8stoken/" KT_VERSION

struct reply {
	struct kt_secret body;
	int too_large;
	int content_type_json;
};

/* How a refused credential file is reported (the reviewer_credential detail). */
static const struct kt_file_words credential_words[KT_FILE__COUNT] = {
	[KT_FILE_LINK]  = { NULL, " is a symbolic link", KT_DETAIL_NONE },
	[KT_FILE_OPEN]  = { NULL, " cannot be opened", KT_DETAIL_NONE },
	[KT_FILE_TYPE]  = { NULL, " is not a regular file", KT_DETAIL_NONE },
	[KT_FILE_OWNER] = { NULL, " is not owned by root", KT_DETAIL_NONE },
	[KT_FILE_MODE]  = { NULL, " is accessible by group or others (want 0600)", KT_DETAIL_NONE },
	[KT_FILE_SIZE]  = { NULL, " is larger than 64 KiB", KT_DETAIL_NONE },
	[KT_FILE_READ]  = { NULL, " cannot be read", KT_DETAIL_NONE },
};

/* A secret file the way sshd treats host keys: no symlink, root's, no group/other bits. */
static const struct kt_file_policy credential_policy = {
	.owner_rule = KT_OWNER_UID, .owner = KT_TRUSTED_UID, .forbidden = 077,
	.max_size = CREDENTIAL_MAX, .allow_empty = true, .words = credential_words,
};

enum kt_reason kt_http_load_credential(const struct kt_config *cfg, struct kt_secret *out,
                                       char *detail, size_t detail_len)
{
	const char *path = cfg->reviewer_token_file;
	enum kt_file_fault f;

	*out = (struct kt_secret){ 0 };
	if (path == NULL) {   /* a client certificate: libcurl reads the key file itself */
		f = kt_read_private_file(cfg->client_key_file, &credential_policy, NULL, detail,
		                         detail_len);
		return f == KT_FILE_OK ? KT_R_OK : KT_R_REVIEWER_CREDENTIAL;
	}
	f = kt_read_private_file(path, &credential_policy, out, detail, detail_len);
	if (f != KT_FILE_OK)
		return f == KT_FILE_NOMEM ? KT_R_NOMEM : KT_R_REVIEWER_CREDENTIAL;
	if (out->len > 0 && out->p[out->len - 1] == '\n')
		out->p[--out->len] = '\0';
	if (out->len == 0) {
		kt_escapef(detail, detail_len, "%s is empty", path);
		goto refused;
	}
	for (size_t i = 0; i < out->len; i++) {
		if ((unsigned char)out->p[i] < 0x21 || (unsigned char)out->p[i] > 0x7e) {
			kt_escapef(detail, detail_len,
			           "%s holds a character not allowed in a bearer token", path);
			goto refused;
		}
	}
	return KT_R_OK;
refused:
	kt_secret_free(out);
	return KT_R_REVIEWER_CREDENTIAL;
}

/* Caps the body while reading: CURLOPT_MAXFILESIZE does not stop a chunked reply. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct reply *r = userp;
	size_t n = size * nmemb;

	if (kt_secret_append(&r->body, data, n) < 0) {   /* beyond KT_REPLY_MAX */
		r->too_large = 1;
		return 0;
	}
	return n;
}

static int is_json_type(const char *ct)
{
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1;

	return ct != NULL && strncasecmp(ct, want, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static enum kt_reason classify_curl(CURLcode cc, const struct reply *r)
{
	switch (cc) {
	case CURLE_OK:
		return KT_R_OK;
	case CURLE_WRITE_ERROR:
		return r->too_large ? KT_R_REPLY_TOO_LARGE : KT_R_TRANSPORT;
	case CURLE_FILESIZE_EXCEEDED:
		return KT_R_REPLY_TOO_LARGE;
	case CURLE_OPERATION_TIMEDOUT:
		return KT_R_TIMEOUT;
	default:
		return KT_R_TRANSPORT;
	}
}

static enum kt_reason classify_status(long status)
{
	if (status == 200 || status == 201)
		return KT_R_OK;
	if (status >= 300 && status < 400)
		return KT_R_REDIRECT;
	if (status == 401 || status == 403)
		return KT_R_REVIEWER_REJECTED;
	return KT_R_HTTP_STATUS;
}

/* The cache directory for the circuit breaker, opened once per helper run (-1: no breaker). */
static const struct kt_cache *breaker_cache(const struct kt_config *cfg)
{
	static struct kt_cache cache = { .dirfd = -1 };
	static int tried;

	if (!tried) {
		tried = 1;
		kt_breaker_open_cache(&cache, cfg->cache_dir);
	}
	return &cache;
}

CURL *kt_http_handle(const struct kt_config *cfg, bool with_credential, long timeout_ms)
{
	CURL *curl = curl_easy_init();

	if (curl == NULL)
		return NULL;
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROXY, "");
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	/* The cluster CA alone: no system store, no CA directory. */
	curl_easy_setopt(curl, CURLOPT_CAINFO, cfg->ca_file);
	curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
	if (cfg->client_cert_file != NULL && with_credential) {
		curl_easy_setopt(curl, CURLOPT_SSLCERT, cfg->client_cert_file);
		curl_easy_setopt(curl, CURLOPT_SSLKEY, cfg->client_key_file);
	}
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout * 1000L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, USER_AGENT);
	return curl;
}

static void attempt(const struct kt_config *cfg, const char *server, const char *path,
                    const char *bearer_header,
                    const char *body, size_t body_len, long timeout_ms, struct reply *rep,
                    struct kt_helper_result *res)
{
	char url[2048], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL, *h;
	const char *lines[] = { "Content-Type: application/json", "Accept: application/json",
	                        bearer_header };
	char *ct = NULL;
	CURL *curl;
	CURLcode cc;
	curl_off_t retry_after = 0;
	int probe_fd = -1;

	res->http_status = 0;
	res->detail[0] = '\0';
	kt_secret_reset(&rep->body);
	rep->too_large = 0;
	/* a server in its backoff is skipped at once (docs/design.md §6.4) */
	if (!kt_breaker_admit(breaker_cache(cfg), server, &probe_fd)) {
		res->reason = KT_R_CIRCUIT_OPEN;
		kt_escapef(res->detail, sizeof(res->detail), "%s is in its backoff after failing", server);
		return;
	}
	curl = kt_http_handle(cfg, true, timeout_ms);
	if (curl == NULL) {
		kt_breaker_record(breaker_cache(cfg), server, KT_R_NOMEM, 0, 0, probe_fd);
		res->reason = KT_R_NOMEM;
		return;
	}
	snprintf(url, sizeof(url), "%s%s", server, path);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		if (lines[i] == NULL)
			continue;
		h = curl_slist_append(headers, lines[i]);
		if (h == NULL) {
			res->reason = KT_R_NOMEM;
			goto out;
		}
		headers = h;
	}

	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)KT_REPLY_MAX);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, rep);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);

	cc = curl_easy_perform(curl);
	res->reason = classify_curl(cc, rep);
	if (res->reason != KT_R_OK) {
		kt_escapef(res->detail, sizeof(res->detail), "%s",
		           errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->http_status);
	curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &retry_after);
	res->reason = classify_status(res->http_status);
	if (res->reason != KT_R_OK) {
		kt_escapef(res->detail, sizeof(res->detail), "HTTP status %ld", res->http_status);
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
	if (!is_json_type(ct)) {
		res->reason = KT_R_MALFORMED_REPLY;
		kt_escapef(res->detail, sizeof(res->detail), "content type %s is not JSON",
		           ct != NULL ? ct : "(none)");
	}
out:
	kt_breaker_record(breaker_cache(cfg), server, res->reason, res->http_status, (long)retry_after,
	                  probe_fd);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
}

void kt_http_review(const struct kt_config *cfg, int only, const char *bearer,
                    const char *body, size_t body_len, struct kt_helper_result *res)
{
	kt_http_post(cfg, only, bearer, "/apis/authentication.k8s.io/v1/tokenreviews", body,
	             body_len, kt_clock_ms(CLOCK_MONOTONIC) + (long long)cfg->timeout * 1000, res);
}

int kt_http_bearer_header(const char *bearer, struct kt_secret *out)
{
	static const char name[] = "Authorization: Bearer ";
	size_t n;

	*out = (struct kt_secret){ 0 };
	if (bearer == NULL)
		return 0;
	n = strlen(bearer);
	if (kt_secret_alloc(out, sizeof(name) + n) < 0)
		return -1;
	kt_secret_append(out, name, sizeof(name) - 1);
	kt_secret_append(out, bearer, n);
	return 0;
}

void kt_http_post(const struct kt_config *cfg, int only, const char *bearer, const char *path,
                  const char *body, size_t body_len, long long deadline_ms,
                  struct kt_helper_result *res)
{
	struct reply rep = { 0 };
	struct kt_secret header;
	int header_failed = kt_http_bearer_header(bearer, &header);

	memset(res, 0, sizeof(*res));
	res->reason = KT_R_TIMEOUT;
	snprintf(res->detail, sizeof(res->detail), "no time left for %s", path);
	if (kt_secret_alloc(&rep.body, KT_REPLY_MAX + 1) < 0 || header_failed) {
		res->reason = KT_R_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < cfg->n_servers; i++) {
		long long left = deadline_ms - kt_clock_ms(CLOCK_MONOTONIC);

		if (only >= 0 && (size_t)only != i)
			continue;
		if (left <= 0) {
			res->reason = KT_R_TIMEOUT;
			break;
		}
		res->server_index = (unsigned)i;
		attempt(cfg, cfg->servers[i], path, header.p, body, body_len, (long)left, &rep, res);
		if (res->reason == KT_R_OK || res->reason == KT_R_NOMEM)
			break;
	}
	if (res->reason == KT_R_OK)
		res->body = kt_secret_take(&rep.body);
out:
	kt_secret_free(&rep.body);
	kt_secret_free(&header);
}
