/* The helper's fetch of the key set through OIDC discovery (jwks_fetch.h). */
#include <curl/curl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "breaker.h"
#include "cache.h"
#include "http.h"
#include "io.h"
#include "json_strict.h"
#include "jwks.h"
#include "jwks_fetch.h"
#include "secure.h"
#include "trusted_owner.h"

#define DISCOVERY_PATH "/.well-known/openid-configuration"
#define DISCOVERY_MAX  (16 * 1024)

struct body {
	char *buf;
	size_t len, max;
	bool too_large;
};

__attribute__((format(printf, 3, 4)))
static void set_detail(struct kt_helper_result *res, enum kt_reason r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kt_vescapef(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
	res->reason = r;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct body *b = userp;
	size_t n = size * nmemb;

	if (b->len + n > b->max) {
		b->too_large = true;
		return 0;
	}
	memcpy(b->buf + b->len, data, n);
	b->len += n;
	return n;
}

/* One GET with the helper's transport rules (kt_http_handle). */
static void get(const struct kt_config *cfg, const char *url, const char *bearer_header,
                bool credential, long timeout_ms, struct body *b, struct kt_helper_result *res)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	CURL *curl = kt_http_handle(cfg, credential, timeout_ms);
	CURLcode cc;

	b->len = 0;
	b->too_large = false;
	res->http_status = 0;
	if (!credential)
		bearer_header = NULL;   /* the credential goes to the API servers only */
	if (curl == NULL || (bearer_header != NULL &&
	                     (headers = curl_slist_append(NULL, bearer_header)) == NULL)) {
		set_detail(res, KT_R_NOMEM, "out of memory");
		curl_easy_cleanup(curl);
		return;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)b->max);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	cc = curl_easy_perform(curl);
	if (cc == CURLE_OPERATION_TIMEDOUT) {
		set_detail(res, KT_R_TIMEOUT, "%s: %s", url, errbuf[0] ? errbuf : "timeout");
	} else if (b->too_large || cc == CURLE_FILESIZE_EXCEEDED) {
		set_detail(res, KT_R_REPLY_TOO_LARGE, "%s: more than %zu bytes", url, b->max);
	} else if (cc != CURLE_OK) {
		set_detail(res, KT_R_TRANSPORT, "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
	} else {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->http_status);
		if (res->http_status == 200)
			res->reason = KT_R_OK;
		else if (res->http_status == 401 || res->http_status == 403)
			set_detail(res, KT_R_REVIEWER_REJECTED, "%s: HTTP status %ld (the reviewer needs "
			           "system:service-account-issuer-discovery)", url, res->http_status);
		else if (res->http_status >= 300 && res->http_status < 400)
			set_detail(res, KT_R_REDIRECT, "%s: HTTP status %ld", url, res->http_status);
		else
			set_detail(res, KT_R_HTTP_STATUS, "%s: HTTP status %ld", url, res->http_status);
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
}

/* Parses a small JSON object the strict way (json_strict.h); NULL otherwise. */
static json_object *parse_object(const struct body *b)
{
	json_object *obj;

	if (kt_json_parse_object(b->buf, b->len, 8, &obj) != KT_R_OK)
		return NULL;
	return obj;
}

static const char *string_member(json_object *obj, const char *key)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	return s != NULL && strlen(s) == (size_t)json_object_get_string_len(v) && s[0] != '\0' &&
	       strpbrk(s, "\n\r") == NULL ? s : NULL;
}

/* Length of "https://authority" at the start of url; 0 when it is not https. */
static size_t origin_len(const char *url)
{
	if (strncmp(url, "https://", 8) != 0)
		return 0;
	return 8 + strcspn(url + 8, "/?#");
}

/* The jwks_uri may be fetched: same origin as server (credential sent) or the configured one (not). */
static bool jwks_uri_allowed(const struct kt_config *cfg, const char *server, const char *uri,
                             bool *same_origin)
{
	size_t n = origin_len(server);

	*same_origin = n > 0 && origin_len(uri) == n && strncmp(uri, server, n) == 0 &&
	               uri[n] == '/';
	return *same_origin || (cfg->jwks_uri != NULL && strcmp(uri, cfg->jwks_uri) == 0);
}

/* Discovery and key set from one server; KT_R_OK once stored. */
static void from_server(const struct kt_config *cfg, const struct kt_cache *c, const char *server,
                        const char *bearer_header, long long deadline, struct kt_helper_result *res)
{
	char url[2048], why[160], source[KT_JWKS_SOURCE_SIZE];
	struct body b = { .max = DISCOVERY_MAX };
	json_object *doc = NULL;
	const char *issuer, *uri;
	struct kt_jwks set;
	bool same_origin;

	res->detail[0] = '\0';
	b.buf = malloc(KT_JWKS_MAX);
	if (b.buf == NULL) {
		set_detail(res, KT_R_NOMEM, "out of memory");
		return;
	}
	snprintf(url, sizeof(url), "%s%s", server, DISCOVERY_PATH);
	get(cfg, url, bearer_header, true, (long)(deadline - kt_clock_ms(CLOCK_MONOTONIC)), &b, res);
	if (res->reason != KT_R_OK)
		goto out;
	doc = parse_object(&b);
	issuer = doc != NULL ? string_member(doc, "issuer") : NULL;
	uri = doc != NULL ? string_member(doc, "jwks_uri") : NULL;
	if (issuer == NULL || uri == NULL || strlen(issuer) > KT_JWKS_ISSUER_MAX ||
	    strlen(uri) >= sizeof(url)) {
		set_detail(res, KT_R_MALFORMED_REPLY, "%s: not a discovery document with issuer and "
		           "jwks_uri", url);
		goto out;
	}
	if (!jwks_uri_allowed(cfg, server, uri, &same_origin)) {
		set_detail(res, KT_R_MALFORMED_REPLY, "jwks_uri %s is not on %s (set jwks_uri to "
		           "allow it)", uri, server);
		goto out;
	}
	snprintf(url, sizeof(url), "%s", uri);
	b.max = KT_JWKS_MAX;
	get(cfg, url, bearer_header, same_origin, (long)(deadline - kt_clock_ms(CLOCK_MONOTONIC)), &b, res);
	if (res->reason != KT_R_OK)
		goto out;
	res->reason = kt_jwks_parse(b.buf, b.len, NULL, &set, why, sizeof(why));
	kt_jwks_free(&set);
	if (res->reason != KT_R_OK) {
		set_detail(res, res->reason, "%s: %s", url, why);
		goto out;
	}
	kt_jwks_source(cfg, source);
	if (kt_jwks_store(c, source, issuer, b.buf, b.len) < 0)
		set_detail(res, KT_R_SYSTEM, "the key set cannot be stored in %s", cfg->cache_dir);
out:
	json_object_put(doc);
	free(b.buf);
}

void kt_jwks_fetch(const struct kt_config *cfg, const char *bearer, struct kt_helper_result *res)
{
	long long deadline = kt_clock_ms(CLOCK_MONOTONIC) + (long long)cfg->timeout * 1000;
	struct kt_cache c = { .dirfd = -1 };
	struct kt_secret header = { 0 };
	char err[160];

	memset(res, 0, sizeof(*res));
	if (kt_cache_open(&c, cfg->cache_dir, KT_TRUSTED_UID, err, sizeof(err)) < 0) {
		set_detail(res, KT_R_SYSTEM, "%s", err);
		return;
	}
	if (kt_http_bearer_header(bearer, &header) < 0) {
		set_detail(res, KT_R_NOMEM, "out of memory");
		goto out;
	}
	set_detail(res, KT_R_CIRCUIT_OPEN, "every server is in its backoff");
	for (size_t i = 0; i < cfg->n_servers; i++) {
		int probe_fd;

		if (kt_clock_ms(CLOCK_MONOTONIC) >= deadline) {
			set_detail(res, KT_R_TIMEOUT, "no time left for server %zu", i);
			break;
		}
		if (!kt_breaker_admit(&c, cfg->servers[i], &probe_fd))
			continue;
		from_server(cfg, &c, cfg->servers[i], header.p, deadline, res);
		kt_breaker_record(&c, cfg->servers[i], res->reason, res->http_status, 0, probe_fd);
		res->server_index = (unsigned)i;
		if (res->reason == KT_R_OK || res->reason == KT_R_NOMEM)
			break;
	}
out:
	kt_secret_free(&header);
	kt_cache_close(&c);
}
