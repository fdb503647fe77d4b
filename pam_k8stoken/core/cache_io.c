/* Small file operations shared by the cache units. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache_io.h"
#include "io.h"
#include "private_file.h"

/* Entries from another boot are never valid. */
int kt_cache_boot_id(char out[40])
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, out, 39);
	close(fd);
	if (n < 36)
		return -1;
	out[36] = '\0';
	return 0;
}

/*
 * Not kt_read_private_file: the cache's files are also opened for writing and created (lock
 * stripes, stats), and its readers want the descriptor. The checks are the same, though.
 */
int kt_cache_open_private(int dirfd, const char *name, int flags, size_t max_size)
{
	const struct kt_file_policy ours = { .owner_rule = KT_OWNER_EUID, .forbidden = 077,
	                                     .max_size = max_size, .allow_empty = true };
	struct stat st;
	int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || kt_file_check(&st, &ours) != KT_FILE_OK) {
		close(fd);
		return -1;
	}
	return fd;
}

int kt_cache_create_temp(int dirfd, char tmp[KT_CACHE_TEMP_NAME_SIZE])
{
	unsigned char r[8];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -1;
	snprintf(tmp, KT_CACHE_TEMP_NAME_SIZE, "t-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5],
	         r[6], r[7]);
	return openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

bool kt_cache_write_fits(size_t len)
{
	struct rlimit fsize;

	if (getrlimit(RLIMIT_FSIZE, &fsize) < 0 || fsize.rlim_cur == RLIM_INFINITY ||
	    fsize.rlim_cur >= len)
		return true;
	errno = EFBIG;
	return false;
}

int kt_cache_write_file(int dirfd, const char *name, const char *head, size_t head_len,
                        const char *tail, size_t tail_len)
{
	char tmp[KT_CACHE_TEMP_NAME_SIZE];
	int fd, rc;

	if (!kt_cache_write_fits(head_len + tail_len))
		return -1;   /* SIGXFSZ would kill the host process */
	fd = kt_cache_create_temp(dirfd, tmp);
	if (fd < 0)
		return -1;
	rc = kt_write_all(fd, head, head_len);
	if (rc == 0 && tail != NULL)
		rc = kt_write_all(fd, tail, tail_len);
	if (close(fd) < 0)
		rc = -1;
	if (rc == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		rc = -1;
	if (rc < 0) {
		int saved = errno;

		unlinkat(dirfd, tmp, 0);   /* a write that cannot complete leaves nothing behind */
		errno = saved;
	}
	return rc;
}
