/*
 * `k8stoken enroll --bundle DIR` (docs/design.md §9.1): installs what `kubectl k8stoken
 * enroll HOST --output DIR` made: the token at the configuration's reviewer_token_file
 * (root:root 0600), the CA at its ca_file (0644) and the configuration itself (0644), each
 * atomically. An existing file is replaced only with --force.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "private_file.h"
#include "renew.h"
#include "secure.h"
#include "token.h"

#define EXIT_FAILED 2
#define EXIT_CONFIG 3
#define BUNDLE_FILE_MAX (64 * 1024)

struct bundle_file {
	const char *name;     /* in the bundle */
	struct kt_secret data;
	char target[PATH_MAX];
	mode_t mode;
};

static const struct kt_file_words bundle_words[KT_FILE__COUNT] = {
	[KT_FILE_OPEN]  = { "cannot open ", "", KT_DETAIL_ERRNO },
	[KT_FILE_TYPE]  = { NULL, " is not a regular file", KT_DETAIL_NONE },
	[KT_FILE_NOMEM] = { NULL, " is not a regular file", KT_DETAIL_NONE },
	[KT_FILE_SIZE]  = { NULL, " cannot be read or is larger than 64 KiB", KT_DETAIL_NONE },
	[KT_FILE_READ]  = { NULL, " cannot be read or is larger than 64 KiB", KT_DETAIL_NONE },
};

/* A regular file of the bundle (no symbolic link), at most 64 KiB; whoever made it. */
static const struct kt_file_policy bundle_policy = {
	.owner_rule = KT_OWNER_ANY, .max_size = BUNDLE_FILE_MAX, .allow_empty = true,
	.words = bundle_words,
};

static int read_bundle_file(int dirfd, struct bundle_file *f)
{
	char why[PATH_MAX + 128];

	if (kt_read_private_file_at(dirfd, f->name, &bundle_policy, &f->data, NULL, why,
	                            sizeof(why)) != KT_FILE_OK) {
		fprintf(stderr, "k8stoken: bundle: %s\n", why);
		return -1;
	}
	return 0;
}

/* The value of "key = VALUE" in the bundle's configuration: an absolute path. */
static int conf_path(const char *conf, const char *key, char *out, size_t outlen)
{
	size_t klen = strlen(key);

	for (const char *line = conf; line != NULL && *line != '\0';) {
		const char *end = strchr(line, '\n'), *v = line + klen;
		size_t n = end != NULL ? (size_t)(end - line) : strlen(line);

		if (n > klen && strncmp(line, key, klen) == 0 && (*v == ' ' || *v == '=')) {
			while (*v == ' ' || *v == '\t' || *v == '=')
				v++;
			n -= (size_t)(v - line);
			while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r'))
				n--;
			if (n == 0 || n >= outlen || v[0] != '/' || memchr(v, ' ', n) != NULL)
				break;
			memcpy(out, v, n);
			out[n] = '\0';
			return 0;
		}
		line = end != NULL ? end + 1 : NULL;
	}
	fprintf(stderr, "k8stoken: bundle: pam_k8stoken.conf has no absolute %s\n", key);
	return -1;
}

static int check_contents(const struct bundle_file *files)
{
	const struct bundle_file *tok = &files[0], *ca = &files[1];
	size_t len = tok->data.len;

	if (len > 0 && tok->data.p[len - 1] == '\n')
		len--;
	if (kt_token_check(tok->data.p, len, BUNDLE_FILE_MAX, NULL) != KT_R_OK) {
		fprintf(stderr, "k8stoken: bundle: reviewer.token is not a ServiceAccount token\n");
		return -1;
	}
	if (strstr(ca->data.p, "-----BEGIN CERTIFICATE-----") == NULL) {
		fprintf(stderr, "k8stoken: bundle: ca.crt holds no PEM certificate\n");
		return -1;
	}
	return 0;
}

/* mkdir -p of path's directory, 0755 root (the CA's /etc/pam_k8stoken may not exist yet). */
static int make_parent(const char *path)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			fprintf(stderr, "k8stoken: cannot create %s: %s\n", dir, strerror(errno));
			return -1;
		}
		*p = '/';
	}
	return 0;
}

int kt_enroll_bundle(const char *bundle, const char *conf, bool force)
{
	struct bundle_file files[] = {
		{ .name = "reviewer.token", .mode = 0600 },
		{ .name = "ca.crt", .mode = 0644 },
		{ .name = "pam_k8stoken.conf", .mode = 0644 },
	};
	const size_t n = sizeof(files) / sizeof(files[0]);
	char err[PATH_MAX + 128] = "";
	int dirfd, rc = EXIT_CONFIG;
	size_t i;

	dirfd = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		fprintf(stderr, "k8stoken: bundle %s: %s\n", bundle, strerror(errno));
		return EXIT_CONFIG;
	}
	for (i = 0; i < n; i++)
		if (read_bundle_file(dirfd, &files[i]) < 0)
			goto out;
	snprintf(files[2].target, sizeof(files[2].target), "%s", conf);
	if (conf_path(files[2].data.p, "reviewer_token_file", files[0].target, PATH_MAX) < 0 ||
	    conf_path(files[2].data.p, "ca_file", files[1].target, PATH_MAX) < 0 ||
	    check_contents(files) < 0)
		goto out;
	for (i = 0; i < n && !force; i++) {
		if (access(files[i].target, F_OK) == 0 || errno != ENOENT) {
			fprintf(stderr, "k8stoken: %s exists: not replaced (use --force to replace it)\n",
			        files[i].target);
			goto out;
		}
	}
	rc = EXIT_FAILED;
	for (i = 0; i < n; i++) {
		if (make_parent(files[i].target) < 0 ||
		    kt_replace_file(files[i].target, files[i].data.p, files[i].data.len, 0, 0,
		                    files[i].mode, err, sizeof(err)) < 0) {
			if (err[0] != '\0')
				fprintf(stderr, "k8stoken: %s\n", err);
			goto out;
		}
		err[0] = '\0';
		printf("installed %s (root:root %04o)\n", files[i].target, (unsigned)files[i].mode);
	}
	rc = 0;
out:
	for (i = 0; i < n; i++)
		kt_secret_free(&files[i].data);
	close(dirfd);
	return rc;
}
