/*
 * `k8stoken renew` (docs/design.md §9.2): the reviewer's bound token asks the API server for
 * its own successor (TokenRequest on its ServiceAccount, allowed by the Role that `kubectl
 * k8stoken enroll` creates), once less than a third of its lifetime is left. The new token
 * must pass a TokenReview, made with itself as the bearer, before it replaces the file; any
 * failure keeps the old one. One line on stderr per run (the journal, under the timer).
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helper_proto.h"
#include "http.h"
#include "io.h"
#include "json_strict.h"
#include "renew.h"
#include "review.h"
#include "secure.h"
#include "token.h"
#include "trusted_owner.h"

#define EXIT_DONE 0
#define EXIT_FAILED 2
#define EXIT_CONFIG 3
#define TOKEN_MAX (64 * 1024)
#define MIN_SECONDS 600      /* the shortest TokenRequest the API server takes */
#define MAX_AUDIENCES 16
#define SA_PREFIX "system:serviceaccount:"

__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* Kubernetes object names: DNS-1123 subdomains (a namespace is a label, which is one too). */
static bool dns_name(const char *s, size_t n, size_t max)
{
	if (n == 0 || n > max || s[0] == '-' || s[0] == '.' || s[n - 1] == '-' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '.'))
			return false;
	return true;
}

static bool claim_int(json_object *payload, const char *key, long long *out)
{
	json_object *v;

	if (!json_object_object_get_ex(payload, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	*out = (long long)json_object_get_int64(v);
	return true;
}

/* "system:serviceaccount:NS:NAME" into c->ns and c->name. */
static int parse_subject(const char *sub, struct kt_cred_claims *c)
{
	const char *rest, *colon;

	if (strncmp(sub, SA_PREFIX, sizeof(SA_PREFIX) - 1) != 0)
		return -1;
	rest = sub + sizeof(SA_PREFIX) - 1;
	colon = strchr(rest, ':');
	if (colon == NULL || !dns_name(rest, (size_t)(colon - rest), 63) ||
	    !dns_name(colon + 1, strlen(colon + 1), 253))
		return -1;
	memcpy(c->ns, rest, (size_t)(colon - rest));
	c->ns[colon - rest] = '\0';
	snprintf(c->name, sizeof(c->name), "%s", colon + 1);
	return 0;
}

int kt_cred_claims(const char *tok, size_t len, struct kt_cred_claims *c, char *err, size_t errlen)
{
	struct kt_token_info info;
	struct kt_token_parts parts;
	json_object *sub;
	int rc = -1;

	memset(c, 0, sizeof(*c));
	if (kt_token_check(tok, len, TOKEN_MAX, &info) != KT_R_OK ||
	    kt_token_decode(tok, len, &parts) != KT_R_OK) {
		set_err(err, errlen, "not a ServiceAccount token (not a JWT)");
		return -1;
	}
	if (!json_object_object_get_ex(parts.payload, "sub", &sub) ||
	    !json_object_is_type(sub, json_type_string) ||
	    parse_subject(json_object_get_string(sub), c) < 0) {
		set_err(err, errlen, "not a ServiceAccount token (no system:serviceaccount subject)");
		goto out;
	}
	c->has_exp = info.has_exp && !info.legacy;
	if (c->has_exp && !claim_int(parts.payload, "exp", &c->exp)) {
		set_err(err, errlen, "the token's exp is not an integer");
		goto out;
	}
	if (!claim_int(parts.payload, "iat", &c->iat))
		c->iat = 0;
	rc = 0;
out:
	kt_token_parts_free(&parts);
	return rc;
}

int kt_cred_read_claims(const struct kt_config *cfg, struct kt_cred_claims *c, char *err,
                        size_t errlen)
{
	char detail[KT_PROTO_DETAIL_MAX] = "";
	struct kt_secret tok;
	int rc;

	if (kt_http_load_credential(cfg, &tok, detail, sizeof(detail)) != KT_R_OK) {
		set_err(err, errlen, "%s", detail[0] ? detail : "cannot read the reviewer credential");
		return -1;
	}
	if (tok.p == NULL)
		return 0;
	rc = kt_cred_claims(tok.p, tok.len, c, err, errlen) == 0 ? 1 : -1;
	kt_secret_free(&tok);
	return rc;
}

/* --- atomic replacement ------------------------------------------------------------------- */

struct temp_file {
	int fd;
	char path[PATH_MAX];
};

/* A private temporary file next to path (".NAME.XXXXXX"), or -1 with err filled. */
static int temp_open(const char *path, struct temp_file *t, char *err, size_t errlen)
{
	char copy[PATH_MAX], copy2[PATH_MAX];
	int n;

	t->fd = -1;
	snprintf(copy, sizeof(copy), "%s", path);
	snprintf(copy2, sizeof(copy2), "%s", path);
	n = snprintf(t->path, sizeof(t->path), "%s/.%s.XXXXXX", dirname(copy), basename(copy2));
	if (n < 0 || (size_t)n >= sizeof(t->path)) {
		set_err(err, errlen, "%s: path too long", path);
		return -1;
	}
	t->fd = mkostemp(t->path, O_CLOEXEC);
	if (t->fd < 0) {
		set_err(err, errlen, "cannot create a temporary file next to %s: %s", path,
		        strerror(errno));
		return -1;
	}
	return 0;
}

static void temp_discard(struct temp_file *t)
{
	if (t->fd < 0)
		return;
	unlink(t->path);
	close(t->fd);
	t->fd = -1;
}

static int temp_commit(struct temp_file *t, const char *path, const char *data, size_t len,
                       uid_t uid, gid_t gid, mode_t mode, char *err, size_t errlen)
{
	char copy[PATH_MAX];
	int dirfd, rc = -1;

	if (fchown(t->fd, uid, gid) < 0 || fchmod(t->fd, mode) < 0) {
		set_err(err, errlen, "cannot set owner and mode of %s: %s", t->path, strerror(errno));
	} else if (kt_write_all(t->fd, data, len) < 0 || fsync(t->fd) < 0) {
		set_err(err, errlen, "cannot write %s: %s", t->path, strerror(errno));
	} else if (rename(t->path, path) < 0) {
		set_err(err, errlen, "cannot rename %s to %s: %s", t->path, path, strerror(errno));
	} else {
		rc = 0;
	}
	if (rc < 0) {
		temp_discard(t);
		return -1;
	}
	close(t->fd);
	t->fd = -1;
	snprintf(copy, sizeof(copy), "%s", path);
	dirfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd >= 0) {   /* the rename itself is durable only once the directory is */
		fsync(dirfd);
		close(dirfd);
	}
	return 0;
}

int kt_replace_file(const char *path, const char *data, size_t len, uid_t uid, gid_t gid,
                    mode_t mode, char *err, size_t errlen)
{
	struct temp_file t;

	if (temp_open(path, &t, err, errlen) < 0)
		return -1;
	return temp_commit(&t, path, data, len, uid, gid, mode, err, errlen);
}

/* --- the exchange ------------------------------------------------------------------------- */

struct renewal {
	const struct kt_config *cfg;
	struct kt_cred_claims old;
	struct kt_secret old_token;
	char *audiences[MAX_AUDIENCES];
	size_t n_audiences;
	struct kt_secret new_token;   /* with a trailing newline, as it is written */
	size_t new_len;               /* without the newline */
	struct kt_cred_claims fresh;
	long http_status;
	const char *server;
	char detail[KT_PROTO_DETAIL_MAX + 64];
};

/* The old token's audiences ("aud": a string or an array of strings), asked for again. */
static int take_audiences(struct renewal *r)
{
	struct kt_token_parts parts;
	json_object *aud;
	int rc = 0;

	if (kt_token_decode(r->old_token.p, r->old_token.len, &parts) != KT_R_OK)
		return -1;
	if (json_object_object_get_ex(parts.payload, "aud", &aud)) {
		size_t n = json_object_is_type(aud, json_type_array) ? json_object_array_length(aud) : 1;

		for (size_t i = 0; i < n && rc == 0; i++) {
			json_object *v = json_object_is_type(aud, json_type_array)
			                 ? json_object_array_get_idx(aud, i) : aud;

			if (i >= MAX_AUDIENCES || !json_object_is_type(v, json_type_string) ||
			    (r->audiences[i] = strdup(json_object_get_string(v))) == NULL)
				rc = -1;
			else
				r->n_audiences++;
		}
	}
	kt_token_parts_free(&parts);
	return r->n_audiences > 0 ? rc : -1;
}

static char *token_request_body(const struct renewal *r, long long seconds)
{
	json_object *root = json_object_new_object(), *spec = json_object_new_object();
	json_object *auds = json_object_new_array();
	char *out = NULL;

	if (root == NULL || spec == NULL || auds == NULL) {
		json_object_put(root);
		json_object_put(spec);
		json_object_put(auds);
		return NULL;
	}
	json_object_object_add(root, "apiVersion", json_object_new_string("authentication.k8s.io/v1"));
	json_object_object_add(root, "kind", json_object_new_string("TokenRequest"));
	for (size_t i = 0; i < r->n_audiences; i++)
		json_object_array_add(auds, json_object_new_string(r->audiences[i]));
	json_object_object_add(spec, "audiences", auds);
	json_object_object_add(spec, "expirationSeconds", json_object_new_int64(seconds));
	json_object_object_add(root, "spec", spec);
	out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
	json_object_put(root);
	return out;
}

/* A JSON reply of the API server, parsed the strict way (json_strict.h). */
static json_object *parse_reply(const struct kt_helper_result *res)
{
	json_object *obj;

	if (res->body.len > KT_REPLY_MAX ||
	    kt_json_parse_object(res->body.p, res->body.len, KT_REPLY_MAX_DEPTH, &obj) != KT_R_OK)
		return NULL;
	return obj;
}

static const char *path_string(json_object *obj, const char *a, const char *b)
{
	json_object *mid, *v;

	if (!json_object_object_get_ex(obj, a, &mid) || !json_object_object_get_ex(mid, b, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Zeroes a string json-c holds (a token) before the object is released. */
static void scrub_string(const char *s)
{
	if (s != NULL)
		explicit_bzero((char *)s, strlen(s));
}

static void post(struct renewal *r, const char *bearer, const char *path, const char *body,
                 struct kt_helper_result *res)
{
	long long deadline = kt_clock_ms(CLOCK_MONOTONIC) + (long long)r->cfg->timeout * 1000;

	kt_http_post(r->cfg, -1, bearer, path, body, strlen(body), deadline, res);
	r->http_status = res->http_status;
	if (res->server_index < r->cfg->n_servers)
		r->server = r->cfg->servers[res->server_index];
}

/* TokenRequest on itself with the current token. 0, or -1 with r->detail. */
static int request_new_token(struct renewal *r, long long seconds)
{
	struct kt_helper_result res;
	char path[512];
	char *body = token_request_body(r, seconds);
	json_object *reply;
	const char *tok;
	int rc = -1;

	if (body == NULL) {
		set_err(r->detail, sizeof(r->detail), "reason=nomem");
		return -1;
	}
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s/token", r->old.ns,
	         r->old.name);
	post(r, r->old_token.p, path, body, &res);
	free(body);
	if (res.reason != KT_R_OK) {
		set_err(r->detail, sizeof(r->detail), "reason=%s http=%ld detail=\"%s\"",
		        kt_reason_name(res.reason), res.http_status, res.detail);
		kt_helper_result_free(&res);
		return -1;
	}
	reply = parse_reply(&res);
	tok = reply != NULL ? path_string(reply, "status", "token") : NULL;
	if (tok == NULL) {
		set_err(r->detail, sizeof(r->detail), "reason=malformed_reply http=%ld "
		        "detail=\"the TokenRequest reply has no status.token\"", res.http_status);
	} else if (kt_cred_claims(tok, strlen(tok), &r->fresh, r->detail, sizeof(r->detail)) < 0 ||
	           strcmp(r->fresh.ns, r->old.ns) != 0 || strcmp(r->fresh.name, r->old.name) != 0 ||
	           !r->fresh.has_exp || r->fresh.exp <= (long long)time(NULL)) {
		set_err(r->detail, sizeof(r->detail), "reason=malformed_reply http=%ld detail=\"the "
		        "new token is not a live token of %s/%s\"", res.http_status, r->old.ns, r->old.name);
	} else if (kt_secret_alloc(&r->new_token, strlen(tok) + 2) < 0) {
		set_err(r->detail, sizeof(r->detail), "reason=nomem");
	} else {
		r->new_len = strlen(tok);
		kt_secret_append(&r->new_token, tok, r->new_len);
		kt_secret_append(&r->new_token, "\n", 1);
		rc = 0;
	}
	scrub_string(tok);
	json_object_put(reply);
	kt_helper_result_free(&res);
	return rc;
}

/* Whether a TokenReview reply says "authenticated as want". */
static bool review_says(json_object *reply, const char *want)
{
	json_object *status, *authenticated, *user, *name;

	return json_object_object_get_ex(reply, "status", &status) &&
	       json_object_object_get_ex(status, "authenticated", &authenticated) &&
	       json_object_is_type(authenticated, json_type_boolean) &&
	       json_object_get_boolean(authenticated) &&
	       json_object_object_get_ex(status, "user", &user) &&
	       json_object_object_get_ex(user, "username", &name) &&
	       json_object_is_type(name, json_type_string) &&
	       strcmp(json_object_get_string(name), want) == 0;
}

/* A TokenReview of the new token with itself as the bearer: it authenticates as the same
 * ServiceAccount and may still create tokenreviews. 0, or -1 with r->detail. */
static int verify_new_token(struct renewal *r)
{
	struct kt_helper_result res;
	char want[sizeof(SA_PREFIX) + 64 + 254 + 1];
	struct kt_secret body;
	json_object *reply;
	int rc = -1;

	if (kt_review_build_request(r->new_token.p, r->new_len, r->audiences, r->n_audiences,
	                            &body) != KT_R_OK) {
		set_err(r->detail, sizeof(r->detail), "reason=nomem");
		return -1;
	}
	r->new_token.p[r->new_len] = '\0';   /* the bearer, without the file's newline */
	post(r, r->new_token.p, "/apis/authentication.k8s.io/v1/tokenreviews", body.p, &res);
	r->new_token.p[r->new_len] = '\n';
	kt_secret_free(&body);
	if (res.reason != KT_R_OK) {
		set_err(r->detail, sizeof(r->detail), "reason=%s http=%ld detail=\"the new token "
		        "failed its TokenReview: %s\"", kt_reason_name(res.reason), res.http_status,
		        res.detail);
		kt_helper_result_free(&res);
		return -1;
	}
	snprintf(want, sizeof(want), SA_PREFIX "%s:%s", r->old.ns, r->old.name);
	reply = parse_reply(&res);
	if (reply != NULL && review_says(reply, want))
		rc = 0;
	else
		set_err(r->detail, sizeof(r->detail), "reason=unauthenticated http=%ld detail=\"the "
		        "TokenReview of the new token did not authenticate it as %s\"", res.http_status, want);
	if (reply != NULL) {
		kt_json_scrub_echoed_token(reply);
		json_object_put(reply);
	}
	kt_helper_result_free(&res);
	return rc;
}

/* --- the run ------------------------------------------------------------------------------ */

static void renewal_free(struct renewal *r)
{
	kt_secret_free(&r->old_token);
	kt_secret_free(&r->new_token);
	for (size_t i = 0; i < r->n_audiences; i++)
		free(r->audiences[i]);
}

/* Serialises renewals of one file: the second one waits, then finds the new token not due. */
static int lock_directory(const char *path)
{
	char copy[PATH_MAX];
	int fd;

	snprintf(copy, sizeof(copy), "%s", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && flock(fd, LOCK_EX) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void utc(long long t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, len, "%lld", t);
}

/* With the lock held and the credential read: renew when due. Writes the log line. */
static int renew_locked(struct renewal *r, const char *file, bool force)
{
	long long now = (long long)time(NULL), lifetime, left;
	struct temp_file t = { .fd = -1 };
	struct stat st;
	char when[32], err[PATH_MAX + 128];
	char sa[400];

	snprintf(sa, sizeof(sa), "sa=%s/%s", r->old.ns, r->old.name);
	if (!r->old.has_exp) {
		fprintf(stderr, "k8stoken renew: skipped %s reason=no_expiry (a legacy token that never "
		        "expires is left alone)\n", sa);
		return EXIT_DONE;
	}
	left = r->old.exp - now;
	lifetime = r->old.exp - (r->old.iat > 0 ? r->old.iat : now);
	if (left <= 0) {
		utc(r->old.exp, when, sizeof(when));
		fprintf(stderr, "k8stoken renew: failed %s reason=expired expired=%s (an expired token "
		        "cannot ask for its successor: enroll the host again)\n", sa, when);
		return EXIT_FAILED;
	}
	if (!force && left * 3 > lifetime) {
		fprintf(stderr, "k8stoken renew: not due %s left=%llds lifetime=%llds\n", sa, left,
		        lifetime);
		return EXIT_DONE;
	}
	if (stat(file, &st) < 0 || take_audiences(r) < 0) {
		fprintf(stderr, "k8stoken renew: failed %s reason=reviewer_credential detail=\"%s: no "
		        "audience or not readable\"\n", sa, file);
		return EXIT_FAILED;
	}
	/* a directory we cannot write is found before a token is minted for nothing */
	if (temp_open(file, &t, err, sizeof(err)) < 0 ||
	    request_new_token(r, lifetime < MIN_SECONDS ? MIN_SECONDS : lifetime) < 0 ||
	    verify_new_token(r) < 0 ||
	    temp_commit(&t, file, r->new_token.p, r->new_token.len, st.st_uid, st.st_gid,
	                st.st_mode & 07777, err, sizeof(err)) < 0) {
		temp_discard(&t);
		if (r->detail[0] == '\0')
			set_err(r->detail, sizeof(r->detail), "reason=write detail=\"%s\"", err);
		fprintf(stderr, "k8stoken renew: failed %s %s server=%s (the old credential is kept)\n",
		        sa, r->detail, r->server != NULL ? r->server : "-");
		return EXIT_FAILED;
	}
	utc(r->fresh.exp, when, sizeof(when));
	fprintf(stderr, "k8stoken renew: renewed %s server=%s expires=%s lifetime=%llds\n", sa,
	        r->server, when, r->fresh.exp - (r->fresh.iat > 0 ? r->fresh.iat : now));
	return EXIT_DONE;
}

int kt_renew(const char *conf, bool force)
{
	struct kt_config cfg;
	struct renewal r = { .cfg = &cfg };
	char err[512], detail[KT_PROTO_DETAIL_MAX] = "";
	int lock = -1, rc = EXIT_FAILED;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "k8stoken renew: failed reason=nomem detail=\"curl_global_init\"\n");
		return EXIT_FAILED;
	}
	kt_config_init(&cfg);
	if (kt_config_load(&cfg, conf, KT_TRUSTED_UID, err, sizeof(err)) != KT_R_OK) {
		curl_global_cleanup();
		fprintf(stderr, "k8stoken renew: failed reason=config detail=\"%s\"\n", err);
		kt_config_free(&cfg);
		return EXIT_CONFIG;
	}
	if (cfg.reviewer_token_file == NULL) {
		fprintf(stderr, "k8stoken renew: skipped reason=client_certificate (a client "
		        "certificate is renewed by whoever issued it)\n");
		kt_config_free(&cfg);
		return EXIT_DONE;
	}
	lock = lock_directory(cfg.reviewer_token_file);
	if (lock < 0) {
		fprintf(stderr, "k8stoken renew: failed reason=lock detail=\"cannot lock the directory "
		        "of %s: %s\"\n", cfg.reviewer_token_file, strerror(errno));
	} else if (kt_http_load_credential(&cfg, &r.old_token, detail, sizeof(detail)) != KT_R_OK ||
	           r.old_token.p == NULL) {
		fprintf(stderr, "k8stoken renew: failed reason=reviewer_credential detail=\"%s\"\n",
		        detail);
	} else if (kt_cred_claims(r.old_token.p, r.old_token.len, &r.old, err, sizeof(err)) < 0) {
		fprintf(stderr, "k8stoken renew: skipped reason=not_a_serviceaccount_token detail=\"%s: "
		        "%s\"\n", cfg.reviewer_token_file, err);
		rc = EXIT_DONE;
	} else {
		rc = renew_locked(&r, cfg.reviewer_token_file, force);
	}
	if (lock >= 0)
		close(lock);
	renewal_free(&r);
	kt_config_free(&cfg);
	curl_global_cleanup();
	return rc;
}
