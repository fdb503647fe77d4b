/* Reading and writing cache entries, lock stripes, stats, flush and clean-up. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cache_io.h"
#include "io.h"
#include "number.h"
#include "secure.h"

#define STATS_FILE "stats"
#define STATS_MAX 128
#define STALE_TEMP_SECONDS 60
#define CLEAN_EVERY 64          /* stores between two clean-ups at the most */
#define LOCK_POLL_NS 5000000L   /* 5 ms between two attempts at a busy lock stripe */

static enum kt_cache_result read_entry(const struct kt_cache *c, const char *name,
                                       const char *boot_id, long long now_ms,
                                       struct kt_identity *id)
{
	char *buf = malloc(KT_CACHE_ENTRY_MAX);
	enum kt_cache_result r = KT_CACHE_MISS;
	ssize_t n;
	int fd;

	memset(id, 0, sizeof(*id));
	if (buf == NULL)
		return KT_CACHE_MISS;
	fd = kt_cache_open_private(c->dirfd, name, O_RDONLY, KT_CACHE_ENTRY_MAX);
	if (fd >= 0) {
		n = kt_read_all(fd, buf, KT_CACHE_ENTRY_MAX);
		close(fd);
		if (n > 0)
			r = kt_cache_entry_parse(c->key, name, boot_id, now_ms, buf, (size_t)n, id);
	}
	free(buf);
	return r;
}

enum kt_cache_result kt_cache_lookup(const struct kt_cache *c, const char *name,
                                     struct kt_identity *id)
{
	char boot_id[40];

	memset(id, 0, sizeof(*id));
	if (c->dirfd < 0 || name[0] == '\0' || kt_cache_boot_id(boot_id) < 0)
		return KT_CACHE_MISS;
	return read_entry(c, name, boot_id, kt_clock_ms(CLOCK_BOOTTIME), id);
}

static unsigned long long count_entries(const struct kt_cache *c);

int kt_cache_store(const struct kt_cache *c, const char *name, const struct kt_identity *id,
                   long long ttl_ms)
{
	char boot_id[40], *buf = NULL;
	unsigned long long bucket;
	size_t len;
	int rc = -1;

	errno = EINVAL;
	if (c->dirfd < 0 || name[0] == '\0' || ttl_ms <= 0 || kt_cache_boot_id(boot_id) < 0)
		return -1;
	buf = malloc(KT_CACHE_ENTRY_MAX);
	if (buf == NULL)
		return -1;
	len = kt_cache_entry_format(c->key, name, boot_id,
	                            kt_clock_ms(CLOCK_BOOTTIME) + ttl_ms, id, buf);
	if (len == 0) {
		errno = EINVAL;
		goto out;
	}
	rc = kt_cache_write_file(c->dirfd, name, buf, len, NULL, 0);
	/* opportunistic clean-up: for one name in CLEAN_EVERY, and whenever over the cap */
	if (rc == 0 && (!kt_parse_hex_n(name + 2, 2, 0, 255, &bucket) || bucket % CLEAN_EVERY == 0 ||
	                count_entries(c) > KT_CACHE_MAX_ENTRIES))
		kt_cache_clean(c);
out:
	free(buf);
	return rc;
}

int kt_cache_lock(const struct kt_cache *c, const char *name, long long deadline_ms)
{
	char stripe[16];
	int fd;

	if (c->dirfd < 0 || name[0] == '\0')
		return -1;
	snprintf(stripe, sizeof(stripe), "lock-%.2s", name + 2);
	fd = kt_cache_open_private(c->dirfd, stripe, O_RDWR | O_CREAT, 0);
	if (fd < 0)
		return -1;
	for (;;) {
		struct timespec pause = { 0, LOCK_POLL_NS };

		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR)
			break;
		if (kt_clock_ms(CLOCK_MONOTONIC) >= deadline_ms)
			break;
		nanosleep(&pause, NULL);
	}
	close(fd);
	return -1;
}

void kt_cache_unlock(int lockfd)
{
	if (lockfd >= 0)
		close(lockfd);   /* closing releases the flock */
}

static int read_stats(int fd, unsigned long long *hits, unsigned long long *misses)
{
	char buf[STATS_MAX];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	const char *p = buf, *end;

	*hits = *misses = 0;
	if (n <= 0)
		return n == 0 ? 0 : -1;
	end = buf + n;
	/* all of "hits N\nmisses N\n", as kt_cache_count writes it */
	if (kt_take_uint_line(&p, end, "hits", 0, ULLONG_MAX, hits) &&
	    kt_take_uint_line(&p, end, "misses", 0, ULLONG_MAX, misses) && p == end)
		return 0;
	*hits = *misses = 0;
	return -1;
}

void kt_cache_count(const struct kt_cache *c, bool hit)
{
	unsigned long long hits, misses;
	char buf[STATS_MAX];
	int fd, n;

	if (c->dirfd < 0)
		return;
	fd = kt_cache_open_private(c->dirfd, STATS_FILE, O_RDWR | O_CREAT, STATS_MAX);
	if (fd < 0)
		return;
	/*
	 * Best effort: never wait. A process stopped while holding this lock must not hold
	 * up any login (docs/security.md); a count lost to contention is harmless.
	 */
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		read_stats(fd, &hits, &misses);
		if (hit)
			hits++;
		else
			misses++;
		/* counters only grow, so the new text is never shorter than the old */
		n = snprintf(buf, sizeof(buf), "hits %llu\nmisses %llu\n", hits, misses);
		if (n > 0 && kt_cache_write_fits((size_t)n)) {
			ssize_t written = pwrite(fd, buf, (size_t)n, 0);
			(void)written;   /* a lost count is harmless */
		}
	}
	close(fd);
}

static bool is_entry_name(const char *name)
{
	if (strncmp(name, "e-", 2) != 0 || strlen(name) != KT_CACHE_NAME_LEN)
		return false;
	return strspn(name + 2, "0123456789abcdef") == KT_CACHE_NAME_LEN - 2;
}

/* Calls fn for every directory entry; fn returns nonzero to stop. */
static int each_file(const struct kt_cache *c, int (*fn)(const struct kt_cache *, const char *, void *),
                     void *arg)
{
	int fd = openat(c->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *e;

	if (fd < 0)
		return -1;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && fn(c, e->d_name, arg) != 0)
			break;
	closedir(d);
	return 0;
}

static int count_one(const struct kt_cache *c, const char *name, void *arg)
{
	(void)c;
	if (is_entry_name(name))
		++*(unsigned long long *)arg;
	return 0;
}

static unsigned long long count_entries(const struct kt_cache *c)
{
	unsigned long long n = 0;

	each_file(c, count_one, &n);
	return n;
}

int kt_cache_stats(const struct kt_cache *c, struct kt_cache_stats *st)
{
	int fd;

	memset(st, 0, sizeof(*st));
	if (c->dirfd < 0)
		return -1;
	st->entries = count_entries(c);
	fd = kt_cache_open_private(c->dirfd, STATS_FILE, O_RDONLY, STATS_MAX);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	read_stats(fd, &st->hits, &st->misses);
	close(fd);
	return 0;
}

struct flush_ctx {
	const char *ns, *name;
	char boot_id[40];
	long long now_ms;
	size_t removed;
};

static int flush_one(const struct kt_cache *c, const char *file, void *arg)
{
	struct flush_ctx *f = arg;
	struct kt_identity id;
	bool remove = f->ns == NULL;

	if (!is_entry_name(file))
		return 0;
	if (!remove) {
		remove = read_entry(c, file, f->boot_id, f->now_ms, &id) == KT_CACHE_POSITIVE &&
		         strcmp(id.sa_namespace, f->ns) == 0 && strcmp(id.sa_name, f->name) == 0;
		kt_identity_free(&id);
	}
	if (remove && unlinkat(c->dirfd, file, 0) == 0)
		f->removed++;
	return 0;
}

int kt_cache_flush(const struct kt_cache *c, const char *ns, const char *name, size_t *removed)
{
	struct flush_ctx f = { .ns = ns, .name = name };

	*removed = 0;
	if (c->dirfd < 0 || kt_cache_boot_id(f.boot_id) < 0)
		return -1;
	f.now_ms = kt_clock_ms(CLOCK_BOOTTIME);
	if (each_file(c, flush_one, &f) < 0)
		return -1;
	*removed = f.removed;
	return 0;
}

struct clean_ctx {
	char boot_id[40];
	long long now_ms;
	time_t now;
	struct survivor {
		char name[KT_CACHE_NAME_LEN + 1];
		time_t mtime;
	} *kept;
	size_t n_kept, cap_kept;
};

static int clean_one(const struct kt_cache *c, const char *file, void *arg)
{
	struct clean_ctx *k = arg;
	struct kt_identity id;
	struct stat st;

	if (strncmp(file, "t-", 2) == 0) {
		if (fstatat(c->dirfd, file, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    k->now - st.st_mtime > STALE_TEMP_SECONDS)
			unlinkat(c->dirfd, file, 0);
		return 0;
	}
	if (!is_entry_name(file))
		return 0;
	if (read_entry(c, file, k->boot_id, k->now_ms, &id) == KT_CACHE_MISS) {
		/* expired, from another boot, forged, or not a regular file: of no use to anyone */
		if (fstatat(c->dirfd, file, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
			unlinkat(c->dirfd, file, 0);
		return 0;
	}
	kt_identity_free(&id);
	if (fstatat(c->dirfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (k->n_kept == k->cap_kept) {
		size_t cap = k->cap_kept ? k->cap_kept * 2 : 256;
		struct survivor *more = realloc(k->kept, cap * sizeof(*more));
		if (more == NULL)
			return 1;
		k->kept = more;
		k->cap_kept = cap;
	}
	memcpy(k->kept[k->n_kept].name, file, KT_CACHE_NAME_LEN + 1);
	k->kept[k->n_kept++].mtime = st.st_mtime;
	return 0;
}

static int newest_first(const void *a, const void *b)
{
	const struct survivor *x = a, *y = b;

	return (x->mtime < y->mtime) - (x->mtime > y->mtime);
}

void kt_cache_clean(const struct kt_cache *c)
{
	struct clean_ctx k = { 0 };

	if (c->dirfd < 0 || kt_cache_boot_id(k.boot_id) < 0)
		return;
	k.now_ms = kt_clock_ms(CLOCK_BOOTTIME);
	k.now = time(NULL);
	each_file(c, clean_one, &k);
	if (k.n_kept > KT_CACHE_MAX_ENTRIES) {
		qsort(k.kept, k.n_kept, sizeof(*k.kept), newest_first);
		for (size_t i = KT_CACHE_MAX_ENTRIES; i < k.n_kept; i++)
			unlinkat(c->dirfd, k.kept[i].name, 0);
	}
	free(k.kept);
}
