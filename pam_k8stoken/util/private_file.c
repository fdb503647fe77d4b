#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "private_file.h"

#define PATH_ESC_LEN 256   /* the file name in a message, escaped */

static uid_t expected_owner(const struct kt_file_policy *p)
{
	return p->owner_rule == KT_OWNER_EUID ? geteuid() : p->owner;
}

enum kt_file_fault kt_file_check(const struct stat *st, const struct kt_file_policy *p)
{
	if (!S_ISREG(st->st_mode))
		return KT_FILE_TYPE;
	if (p->owner_rule != KT_OWNER_ANY && st->st_uid != expected_owner(p))
		return KT_FILE_OWNER;
	if ((st->st_mode & p->forbidden) != 0)
		return KT_FILE_MODE;
	if (st->st_size < 0 || (unsigned long long)st->st_size > p->max_size)
		return KT_FILE_SIZE;
	return KT_FILE_OK;
}

/* The fault whose words stand in for f's when a policy gives f none (KT_FILE_OK: none). */
static const enum kt_file_fault more_general[KT_FILE__COUNT] = {
	[KT_FILE_MISSING] = KT_FILE_OPEN, [KT_FILE_LINK] = KT_FILE_OPEN,
	[KT_FILE_STAT] = KT_FILE_TYPE, [KT_FILE_OWNER] = KT_FILE_TYPE,
	[KT_FILE_MODE] = KT_FILE_TYPE, [KT_FILE_SIZE] = KT_FILE_TYPE,
	[KT_FILE_EMPTY] = KT_FILE_READ,
};

/* The policy's message for fault f into err. */
static void word(const struct kt_file_policy *p, enum kt_file_fault f, const char *path,
                 const struct stat *st, int e, char *err, size_t errlen)
{
	const struct kt_file_words *w = p->words != NULL ? &p->words[f] : NULL;
	char epath[PATH_ESC_LEN], detail[160] = "", ebuf[128];

	if (err == NULL || errlen == 0)
		return;
	err[0] = '\0';
	if (w != NULL && w->tail == NULL && more_general[f] != KT_FILE_OK)
		w = &p->words[more_general[f]];
	if (w == NULL || w->tail == NULL)
		return;
	if (w->detail == KT_DETAIL_ERRNO)
		snprintf(detail, sizeof(detail), ": %s", strerror_r(e, ebuf, sizeof(ebuf)));
	else if (w->detail == KT_DETAIL_OWNER)
		snprintf(detail, sizeof(detail), " %lu, expected %lu", (unsigned long)st->st_uid,
		         (unsigned long)expected_owner(p));
	else if (w->detail == KT_DETAIL_MAX)
		snprintf(detail, sizeof(detail), " %zu bytes", p->max_size);
	kt_escape(path, strlen(path), epath, sizeof(epath));
	snprintf(err, errlen, "%s%s%s%s", w->head != NULL ? w->head : "", epath, w->tail, detail);
}

/* The whole file into out, one byte more than max_size allowed for, to see one that grew. */
static enum kt_file_fault read_contents(int fd, const struct kt_file_policy *p,
                                        struct kt_secret *out, int *e)
{
	ssize_t n;

	if (kt_secret_alloc(out, p->max_size + 2) < 0)
		return KT_FILE_NOMEM;
	n = kt_secret_read(out, fd);
	*e = n < 0 ? errno : 0;   /* a later fault's words must not show a stale errno */
	if (n < 0)
		return KT_FILE_READ;
	if (out->len > p->max_size)
		return KT_FILE_SIZE;
	if (out->len == 0 && !p->allow_empty)
		return KT_FILE_EMPTY;
	return KT_FILE_OK;
}

enum kt_file_fault kt_read_private_file_at(int dirfd, const char *path,
                                           const struct kt_file_policy *p,
                                           struct kt_secret *out, struct stat *st,
                                           char *err, size_t errlen)
{
	struct stat own;
	enum kt_file_fault f;
	int fd, e = 0;

	if (st == NULL)
		st = &own;
	memset(st, 0, sizeof(*st));
	if (out != NULL)
		*out = (struct kt_secret){ 0 };
	/* O_NONBLOCK: a FIFO planted at the path must not hang us before fstat refuses it */
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY |
	                         (p->follow_symlink ? 0 : O_NOFOLLOW));
	if (fd < 0) {
		e = errno;
		f = e == ENOENT ? KT_FILE_MISSING : e == ELOOP ? KT_FILE_LINK :
		    e == ENOMEM ? KT_FILE_NOMEM : KT_FILE_OPEN;
		word(p, f, path, st, e, err, errlen);
		return f;
	}
	if (fstat(fd, st) < 0) {
		e = errno;
		f = KT_FILE_STAT;
	} else {
		f = kt_file_check(st, p);
	}
	if (f == KT_FILE_OK && out != NULL)
		f = read_contents(fd, p, out, &e);
	close(fd);
	if (f != KT_FILE_OK) {
		if (out != NULL)
			kt_secret_free(out);
		word(p, f, path, st, e, err, errlen);
	}
	return f;
}

enum kt_file_fault kt_read_private_file(const char *path, const struct kt_file_policy *p,
                                        struct kt_secret *out, char *err, size_t errlen)
{
	return kt_read_private_file_at(AT_FDCWD, path, p, out, NULL, err, errlen);
}
