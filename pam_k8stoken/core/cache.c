/* The cache directory: key, entry names, lookups, atomic stores, lock stripes, stats, clean-up. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cache_io.h"
#include "io.h"
#include "secure.h"

#define KEY_FILE "key"
#define STATS_FILE "stats"
#define NAME_DOMAIN "k8stoken-entry-name"
#define STALE_TEMP_SECONDS 60
#define CLEAN_EVERY 64          /* stores between two clean-ups at the latest */
#define LOCK_POLL_NS 5000000L   /* 5 ms between lock attempts */

/* Loads the key, creating it when missing: a fully written temp file linked into place. */
static int load_key(int dirfd, unsigned char key[KT_CACHE_KEY_LEN])
{
	char tmp[KT_CACHE_TEMP_NAME_SIZE];
	int fd, rc = -1;

	for (int attempt = 0; attempt < 2; attempt++) {
		fd = kt_cache_open_private(dirfd, KEY_FILE, O_RDONLY, KT_CACHE_KEY_LEN);
		if (fd >= 0) {
			rc = kt_read_all(fd, (char *)key, KT_CACHE_KEY_LEN) == KT_CACHE_KEY_LEN ? 0 : -1;
			close(fd);
			return rc;
		}
		if (errno != ENOENT)
			return -1;
		if (!kt_cache_write_fits(KT_CACHE_KEY_LEN))
			return -1;   /* SIGXFSZ would kill the host process: work uncached */
		fd = kt_cache_create_temp(dirfd, tmp);
		if (fd < 0)
			return -1;
		rc = getrandom(key, KT_CACHE_KEY_LEN, 0) == KT_CACHE_KEY_LEN &&
		     kt_write_all(fd, key, KT_CACHE_KEY_LEN) == 0 ? 0 : -1;
		close(fd);
		/* link, not rename: the first key ever written stays; a loser reads the winner's */
		if (rc == 0 && linkat(dirfd, tmp, dirfd, KEY_FILE, 0) == 0) {
			unlinkat(dirfd, tmp, 0);
			return 0;
		}
		unlinkat(dirfd, tmp, 0);
		explicit_bzero(key, KT_CACHE_KEY_LEN);
		if (rc < 0 || errno != EEXIST)
			return -1;
	}
	return -1;
}

int kt_cache_open(struct kt_cache *c, const char *dir, uid_t owner, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	c->dirfd = -1;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", dir,
		         errno == ELOOP || errno == ENOTDIR ? "not a directory (or a symbolic link)"
		                                            : strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_uid != owner || (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s must be owned by uid %lu with mode 0700", dir,
		         (unsigned long)owner);
		close(fd);
		return -1;
	}
	if (load_key(fd, c->key) < 0) {
		snprintf(err, errlen, "cannot read or create the key in %s", dir);
		close(fd);
		return -1;
	}
	c->dirfd = fd;
	return 0;
}

void kt_cache_close(struct kt_cache *c)
{
	if (c->dirfd >= 0)
		close(c->dirfd);
	c->dirfd = -1;
	explicit_bzero(c->key, sizeof(c->key));
}

static void put_be32(unsigned char *p, size_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Appends be32(count) and each string as be32(length) bytes; returns the new end. */
static unsigned char *put_list(unsigned char *p, char *const *items, size_t n)
{
	put_be32(p, n);
	p += 4;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(items[i]);

		put_be32(p, len);
		memcpy(p + 4, items[i], len);
		p += 4 + len;
	}
	return p;
}

static size_t list_size(char *const *items, size_t n)
{
	size_t total = 4;

	for (size_t i = 0; i < n; i++)
		total += 4 + strlen(items[i]);
	return total;
}

void kt_cache_name(const struct kt_cache *c, const char *token, size_t len,
                   char *const *audiences, size_t n_audiences, char *const *servers,
                   size_t n_servers, char name[KT_CACHE_NAME_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE], *p;
	struct kt_secret msg;
	unsigned int mdlen = 0;
	size_t total = sizeof(NAME_DOMAIN) + 4 + len + list_size(audiences, n_audiences) +
	               list_size(servers, n_servers);

	name[0] = '\0';
	if (kt_secret_alloc(&msg, total) < 0)
		return;
	p = (unsigned char *)msg.p;
	memcpy(p, NAME_DOMAIN, sizeof(NAME_DOMAIN));
	p += sizeof(NAME_DOMAIN);
	put_be32(p, len);
	memcpy(p + 4, token, len);
	p = put_list(p + 4 + len, audiences, n_audiences);
	put_list(p, servers, n_servers);
	if (HMAC(EVP_sha256(), c->key, KT_CACHE_KEY_LEN, (unsigned char *)msg.p, total, md,
	         &mdlen) != NULL && mdlen == 32) {
		name[0] = 'e';
		name[1] = '-';
		kt_hex(md, mdlen, name + 2);
	}
	kt_secret_free(&msg);
}
