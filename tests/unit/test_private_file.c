/*
 * cmocka tests for private_file.c: kt_read_private_file(_at) and kt_file_check, each fault
 * made for real in a fresh temporary directory, and the policy's words for it. Owners are
 * relative to geteuid(), so the tests run the same as root and as an ordinary user.
 * KT_FILE_STAT is not made: fstat of a descriptor just opened does not fail on demand.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "private_file.h"

/* The NOMEM test asks for more memory than exists: ASan must answer NULL, as malloc does. */
__attribute__((visibility("default"))) const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

/* Every fault worded: head (NULL for one, to see it left out), tail, detail. */
static const struct kt_file_words all_words[KT_FILE__COUNT] = {
	[KT_FILE_MISSING] = { "file ", " does not exist", KT_DETAIL_NONE },
	[KT_FILE_LINK]    = { "file ", " is a symbolic link", KT_DETAIL_NONE },
	[KT_FILE_OPEN]    = { "cannot open ", "", KT_DETAIL_ERRNO },
	[KT_FILE_STAT]    = { "cannot examine ", "", KT_DETAIL_ERRNO },
	[KT_FILE_TYPE]    = { "file ", " is not a regular file", KT_DETAIL_NONE },
	[KT_FILE_OWNER]   = { "file ", " is owned by uid", KT_DETAIL_OWNER },
	[KT_FILE_MODE]    = { NULL, " has forbidden mode bits", KT_DETAIL_NONE },
	[KT_FILE_SIZE]    = { "file ", " is larger than", KT_DETAIL_MAX },
	[KT_FILE_READ]    = { "cannot read ", "", KT_DETAIL_ERRNO },
	[KT_FILE_EMPTY]   = { "file ", " is empty", KT_DETAIL_NONE },
	[KT_FILE_NOMEM]   = { "no memory for ", "", KT_DETAIL_NONE },
};

/*
 * Only the general faults worded: the others fall back to them (MISSING and LINK to OPEN;
 * OWNER, MODE and SIZE to TYPE; EMPTY to READ). A head without a tail counts for nothing.
 */
static const struct kt_file_words general_words[KT_FILE__COUNT] = {
	[KT_FILE_MISSING] = { "ignored head ", NULL, KT_DETAIL_NONE },
	[KT_FILE_OPEN]    = { "open ", " failed", KT_DETAIL_ERRNO },
	[KT_FILE_TYPE]    = { "refused ", " (regular, ours, private, small)", KT_DETAIL_MAX },
	[KT_FILE_READ]    = { "read ", " failed", KT_DETAIL_NONE },
};

/* The general ones missing too: nothing to fall back on, no message. */
static const struct kt_file_words no_general_words[KT_FILE__COUNT] = {
	[KT_FILE_MISSING] = { "file ", NULL, KT_DETAIL_NONE },
	[KT_FILE_MODE]    = { "file ", NULL, KT_DETAIL_NONE },
	[KT_FILE_EMPTY]   = { "file ", NULL, KT_DETAIL_NONE },
};

struct tmp {
	char dir[64];
	int dirfd;
	char path[160];   /* scratch: a name in dir */
};

static int setup_tmp(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/kt-private-file-XXXXXX");
	if (mkdtemp(t->dir) == NULL)
		return -1;
	t->dirfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->dirfd < 0)
		return -1;
	*state = t;
	/* a FIFO that made the reader wait would end the run here rather than hang it */
	alarm(30);
	return 0;
}

/* The directory holds files and empty directories only. */
static int teardown_tmp(void **state)
{
	struct tmp *t = *state;
	DIR *d = fdopendir(dup(t->dirfd));
	struct dirent *e;

	alarm(0);
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(t->dirfd, e->d_name, 0) < 0)
			unlinkat(t->dirfd, e->d_name, AT_REMOVEDIR);
	}
	if (d != NULL)
		closedir(d);
	close(t->dirfd);
	rmdir(t->dir);
	free(t);
	return 0;
}

/* t->path: name in the temporary directory */
static const char *at(struct tmp *t, const char *name)
{
	snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, name);
	return t->path;
}

static void write_file(struct tmp *t, const char *name, const void *text, size_t len,
                       mode_t mode)
{
	int fd;

	/* a new file each time: an earlier one may be read-only, which only root could rewrite */
	assert_true(unlinkat(t->dirfd, name, 0) == 0 || errno == ENOENT);
	fd = openat(t->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);   /* the mode asked for, whatever the umask */
	close(fd);
}

static struct kt_file_policy policy(const struct kt_file_words *words)
{
	return (struct kt_file_policy){
		.owner_rule = KT_OWNER_EUID, .forbidden = 022, .max_size = 64, .words = words,
	};
}

/* kt_read_private_file of path: the fault, with err; on a fault out must be left empty. */
static enum kt_file_fault try_read(const char *path, const struct kt_file_policy *p,
                                   struct kt_secret *out, char *err, size_t errlen)
{
	enum kt_file_fault f;

	if (out != NULL)
		memset(out, 0xa5, sizeof(*out));   /* whatever was there is not freed */
	memset(err, 'x', errlen - 1);
	err[errlen - 1] = '\0';
	f = kt_read_private_file(path, p, out, err, errlen);
	if (f != KT_FILE_OK && out != NULL) {
		assert_null(out->p);
		assert_int_equal(out->len, 0);
		assert_int_equal(out->cap, 0);
	}
	return f;
}

/*
 * The fault for path, and its message: a format whose %s is the path (on KT_FILE_OK, err is
 * not written and not checked). checks_too: out NULL (the checks alone) comes to the same;
 * not so for what only reading finds (READ, EMPTY, NOMEM, a size fstat did not show).
 */
static void vexpect(bool checks_too, const char *path, const struct kt_file_policy *p,
                    enum kt_file_fault fault, const char *want_fmt, va_list ap)
{
	struct kt_secret out;
	char err[512], want[512];

	vsnprintf(want, sizeof(want), want_fmt, ap);
	assert_int_equal(try_read(path, p, &out, err, sizeof(err)), fault);
	if (fault == KT_FILE_OK) {
		assert_int_equal(out.p[out.len], '\0');
		kt_secret_free(&out);
	} else {
		assert_string_equal(err, want);
	}
	if (checks_too) {
		assert_int_equal(try_read(path, p, NULL, err, sizeof(err)), fault);
		if (fault != KT_FILE_OK)
			assert_string_equal(err, want);
	}
}

__attribute__((format(printf, 4, 5)))
static void expect(const char *path, const struct kt_file_policy *p, enum kt_file_fault fault,
                   const char *want_fmt, ...)
{
	va_list ap;

	va_start(ap, want_fmt);
	vexpect(true, path, p, fault, want_fmt, ap);
	va_end(ap);
}

/* A fault only reading finds: with out NULL the file passes (the callers check that). */
__attribute__((format(printf, 4, 5)))
static void expect_reading(const char *path, const struct kt_file_policy *p,
                           enum kt_file_fault fault, const char *want_fmt, ...)
{
	va_list ap;

	va_start(ap, want_fmt);
	vexpect(false, path, p, fault, want_fmt, ap);
	va_end(ap);
}

static void test_ok(void **state)
{
	static const char text[] = "line one\n\0binary\xff";   /* a NUL inside counts */
	struct tmp *t = *state;
	struct kt_file_policy p = policy(all_words);
	struct kt_secret out;
	struct stat st, want;
	char err[256];

	write_file(t, "ok", text, sizeof(text) - 1, 0644);
	assert_int_equal(try_read(at(t, "ok"), &p, &out, err, sizeof(err)), KT_FILE_OK);
	assert_int_equal(out.len, sizeof(text) - 1);
	assert_memory_equal(out.p, text, sizeof(text) - 1);
	assert_int_equal(out.p[out.len], '\0');
	assert_int_equal(out.cap, p.max_size + 2);   /* one byte more than allowed, and the NUL */
	kt_secret_free(&out);

	/* exactly max_size bytes is fine */
	p.max_size = sizeof(text) - 1;
	assert_int_equal(try_read(at(t, "ok"), &p, &out, err, sizeof(err)), KT_FILE_OK);
	assert_int_equal(out.len, p.max_size);
	kt_secret_free(&out);

	/* st: the file's status, as stat(2) has it */
	assert_int_equal(stat(at(t, "ok"), &want), 0);
	memset(&st, 0, sizeof(st));
	assert_int_equal(kt_read_private_file_at(AT_FDCWD, at(t, "ok"), &p, &out, &st, NULL, 0),
	                 KT_FILE_OK);
	assert_int_equal(st.st_ino, want.st_ino);
	assert_int_equal(st.st_dev, want.st_dev);
	assert_int_equal(st.st_size, sizeof(text) - 1);
	assert_int_equal(st.st_mode, S_IFREG | 0644);
	assert_int_equal(st.st_uid, geteuid());
	kt_secret_free(&out);

	/* every owner rule that names us */
	p.owner_rule = KT_OWNER_ANY;
	assert_int_equal(try_read(at(t, "ok"), &p, &out, err, sizeof(err)), KT_FILE_OK);
	kt_secret_free(&out);
	p.owner_rule = KT_OWNER_UID;
	p.owner = geteuid();
	assert_int_equal(try_read(at(t, "ok"), &p, &out, err, sizeof(err)), KT_FILE_OK);
	kt_secret_free(&out);

	/* out NULL: the checks only */
	assert_int_equal(try_read(at(t, "ok"), &p, NULL, err, sizeof(err)), KT_FILE_OK);
	/* err NULL, and a policy without words */
	assert_int_equal(kt_read_private_file(at(t, "ok"), &p, &out, NULL, 0), KT_FILE_OK);
	kt_secret_free(&out);
	p.words = NULL;
	assert_int_equal(try_read(at(t, "ok"), &p, &out, err, sizeof(err)), KT_FILE_OK);
	assert_string_equal(out.p, "line one\n");
	kt_secret_free(&out);
}

static void test_missing(void **state)
{
	struct tmp *t = *state;
	struct kt_file_policy p = policy(all_words);
	struct stat st;

	expect(at(t, "none"), &p, KT_FILE_MISSING, "file %s does not exist", t->path);
	p.words = general_words;
	expect(at(t, "none"), &p, KT_FILE_MISSING, "open %s failed: %s", t->path,
	       strerror(ENOENT));
	p.words = no_general_words;
	expect(at(t, "none"), &p, KT_FILE_MISSING, "%s", "");
	p.words = NULL;
	expect(at(t, "none"), &p, KT_FILE_MISSING, "%s", "");

	/* st is cleared: nothing was opened */
	memset(&st, 0xa5, sizeof(st));
	assert_int_equal(kt_read_private_file_at(AT_FDCWD, at(t, "none"), &p, NULL, &st, NULL, 0),
	                 KT_FILE_MISSING);
	assert_int_equal(st.st_mode, 0);
	assert_int_equal(st.st_ino, 0);
}

static void test_symlink(void **state)
{
	struct tmp *t = *state;
	struct kt_file_policy p = policy(all_words);
	struct kt_secret out;
	struct stat st;
	char err[256];

	write_file(t, "target", "pointed at", 10, 0644);
	assert_int_equal(symlinkat("target", t->dirfd, "link"), 0);
	assert_int_equal(symlinkat("none", t->dirfd, "dangling"), 0);
	assert_int_equal(mkfifoat(t->dirfd, "fifo", 0600), 0);
	assert_int_equal(symlinkat("fifo", t->dirfd, "fifolink"), 0);

	/* refused, whatever it points at */
	expect(at(t, "link"), &p, KT_FILE_LINK, "file %s is a symbolic link", t->path);
	expect(at(t, "dangling"), &p, KT_FILE_LINK, "file %s is a symbolic link", t->path);
	expect(at(t, "fifolink"), &p, KT_FILE_LINK, "file %s is a symbolic link", t->path);
	p.words = general_words;
	expect(at(t, "link"), &p, KT_FILE_LINK, "open %s failed: %s", t->path, strerror(ELOOP));

	/* followed when the policy says so: the target is read and checked */
	p.words = all_words;
	p.follow_symlink = true;
	assert_int_equal(kt_read_private_file_at(AT_FDCWD, at(t, "link"), &p, &out, &st,
	                                         err, sizeof(err)), KT_FILE_OK);
	assert_string_equal(out.p, "pointed at");
	assert_int_equal(out.len, 10);
	assert_true(S_ISREG(st.st_mode));   /* the target's status, not the link's */
	assert_int_equal(st.st_size, 10);
	kt_secret_free(&out);
	expect(at(t, "dangling"), &p, KT_FILE_MISSING, "file %s does not exist", t->path);
	expect(at(t, "fifolink"), &p, KT_FILE_TYPE, "file %s is not a regular file", t->path);
	assert_int_equal(fchmodat(t->dirfd, "target", 0666, 0), 0);
	expect(at(t, "link"), &p, KT_FILE_MODE, "%s has forbidden mode bits", t->path);
}

static void test_not_regular(void **state)
{
	struct tmp *t = *state;
	struct kt_file_policy p = policy(all_words);
	struct stat st;

	/* a FIFO with no writer: opened without waiting, refused by its type */
	assert_int_equal(mkfifoat(t->dirfd, "fifo", 0600), 0);
	expect(at(t, "fifo"), &p, KT_FILE_TYPE, "file %s is not a regular file", t->path);
	assert_int_equal(kt_read_private_file_at(t->dirfd, "fifo", &p, NULL, &st, NULL, 0),
	                 KT_FILE_TYPE);
	assert_true(S_ISFIFO(st.st_mode));

	assert_int_equal(mkdirat(t->dirfd, "sub", 0700), 0);
	expect(at(t, "sub"), &p, KT_FILE_TYPE, "file %s is not a regular file", t->path);
	expect(t->dir, &p, KT_FILE_TYPE, "file %s is not a regular file", t->dir);
	assert_int_equal(kt_read_private_file_at(t->dirfd, "sub", &p, NULL, &st, NULL, 0),
	                 KT_FILE_TYPE);
	assert_true(S_ISDIR(st.st_mode));

	/* a device */
	expect("/dev/null", &p, KT_FILE_TYPE, "file %s is not a regular file", "/dev/null");

	p.words = general_words;
	expect(at(t, "fifo"), &p, KT_FILE_TYPE,
	       "refused %s (regular, ours, private, small) 64 bytes", t->path);
}

static void test_open_error(void **state)
{
	struct tmp *t = *state;
	struct kt_file_policy p = policy(all_words);

	/* a regular file used as a directory: ENOTDIR, an open error of no special kind */
	write_file(t, "file", "x", 1, 0644);
	expect(at(t, "file/x"), &p, KT_FILE_OPEN, "cannot open %s: %s", t->path,
	       strerror(ENOTDIR));
	p.words = general_words;
	expect(at(t, "file/x"), &p, KT_FILE_OPEN, "open %s failed: %s", t->path,
	       strerror(ENOTDIR));
	p.words = no_general_words;
	expect(at(t, "file/x"), &p, KT_FILE_OPEN, "%s", "");
}

static void test_owner(void **state)
{
	struct tmp *t = *state;
	struct kt_file_policy p = policy(all_words);
	unsigned long me = (unsigned long)geteuid(), other = me + 1;

	write_file(t, "ours", "x", 1, 0644);
	p.owner_rule = KT_OWNER_UID;
	p.owner = geteuid() + 1;   /* never us, root or not */
	expect(at(t, "ours"), &p, KT_FILE_OWNER, "file %s is owned by uid %lu, expected %lu",
	       t->path, me, other);
	p.words = general_words;
	expect(at(t, "ours"), &p, KT_FILE_OWNER,
	       "refused %s (regular, ours, private, small) 64 bytes", t->path);
	/* checked before the mode */
	assert_int_equal(fchmodat(t->dirfd, "ours", 0666, 0), 0);
	expect(at(t, "ours"), &p, KT_FILE_OWNER,
	       "refused %s (regular, ours, private, small) 64 bytes", t->path);
}

static void test_mode(void **state)
{
	static const mode_t not_writable_ok[] = { 0644, 0600, 0444, 0400, 0755, 0640 };
	static const mode_t not_writable_bad[] = { 0664, 0646, 0666, 0620, 0602, 0777 };
	static const mode_t private_ok[] = { 0600, 0400, 0700 };
	static const mode_t private_bad[] = { 0640, 0604, 0644, 0610, 0601, 0660 };
	struct tmp *t = *state;
	struct kt_file_policy p = policy(all_words);
	size_t i;

	for (i = 0; i < sizeof(not_writable_ok) / sizeof(not_writable_ok[0]); i++) {
		write_file(t, "f", "x", 1, not_writable_ok[i]);
		expect(at(t, "f"), &p, KT_FILE_OK, "%s", "");
	}
	for (i = 0; i < sizeof(not_writable_bad) / sizeof(not_writable_bad[0]); i++) {
		write_file(t, "f", "x", 1, not_writable_bad[i]);
		expect(at(t, "f"), &p, KT_FILE_MODE, "%s has forbidden mode bits", t->path);
	}
	p.forbidden = 077;
	for (i = 0; i < sizeof(private_ok) / sizeof(private_ok[0]); i++) {
		write_file(t, "f", "x", 1, private_ok[i]);
		expect(at(t, "f"), &p, KT_FILE_OK, "%s", "");
	}
	for (i = 0; i < sizeof(private_bad) / sizeof(private_bad[0]); i++) {
		write_file(t, "f", "x", 1, private_bad[i]);
		expect(at(t, "f"), &p, KT_FILE_MODE, "%s has forbidden mode bits", t->path);
	}
	p.words = general_words;
	expect(at(t, "f"), &p, KT_FILE_MODE, "refused %s (regular, ours, private, small) 64 bytes",
	       t->path);
	p.words = no_general_words;   /* MODE has no tail and TYPE has no words */
	expect(at(t, "f"), &p, KT_FILE_MODE, "%s", "");
}

/* name read whole: text, len bytes */
static void expect_ok(struct tmp *t, const char *name, const struct kt_file_policy *p,
                      const char *text, size_t len)
{
	struct kt_secret out;
	char err[64];

	assert_int_equal(try_read(at(t, name), p, &out, err, sizeof(err)), KT_FILE_OK);
	assert_int_equal(out.len, len);
	assert_memory_equal(out.p, text, len);
	assert_int_equal(out.p[len], '\0');
	kt_secret_free(&out);
}

static void test_size(void **state)
{
	struct tmp *t = *state;
	struct kt_file_policy p = policy(all_words);

	p.max_size = 10;
	write_file(t, "ten", "0123456789", 10, 0644);
	write_file(t, "eleven", "0123456789a", 11, 0644);
	expect_ok(t, "ten", &p, "0123456789", 10);
	expect(at(t, "eleven"), &p, KT_FILE_SIZE, "file %s is larger than 10 bytes", t->path);
	p.words = general_words;
	expect(at(t, "eleven"), &p, KT_FILE_SIZE,
	       "refused %s (regular, ours, private, small) 10 bytes", t->path);
	/* checked after the mode */
	p.words = all_words;
	assert_int_equal(fchmodat(t->dirfd, "eleven", 0666, 0), 0);
	expect(at(t, "eleven"), &p, KT_FILE_MODE, "%s has forbidden mode bits", t->path);
}

/*
 * Larger than max_size by what could be read, though fstat said 0 bytes: a /proc file. Only
 * a reader sees it; out NULL (checks alone) passes it.
 */
static void test_size_by_reading(void **state)
{
	static const char status[] = "/proc/self/status";
	struct kt_file_policy p = policy(all_words);
	struct kt_secret out;
	struct stat st;
	char err[256];

	(void)state;
	p.owner_rule = KT_OWNER_ANY;
	p.max_size = 8;
	if (stat(status, &st) < 0 || st.st_size != 0)
		skip();
	expect_reading(status, &p, KT_FILE_SIZE, "file %s is larger than 8 bytes", status);
	assert_int_equal(try_read(status, &p, NULL, err, sizeof(err)), KT_FILE_OK);
	p.max_size = 1 << 16;
	assert_int_equal(try_read(status, &p, &out, err, sizeof(err)), KT_FILE_OK);
	assert_true(out.len > 8);
	assert_int_equal(strncmp(out.p, "Name:", 5), 0);
	assert_int_equal(strlen(out.p), out.len);
	kt_secret_free(&out);
}

/* A read error: /proc/self/mem is a regular file whose offset 0 is not mapped (EIO). */
static void test_read_error(void **state)
{
	static const char mem[] = "/proc/self/mem";
	struct kt_file_policy p = policy(all_words);
	char err[256];

	(void)state;
	p.forbidden = 077;
	if (access(mem, R_OK) < 0)
		skip();
	expect_reading(mem, &p, KT_FILE_READ, "cannot read %s: %s", mem, strerror(EIO));
	p.words = general_words;
	expect_reading(mem, &p, KT_FILE_READ, "read %s failed", mem);
	assert_int_equal(try_read(mem, &p, NULL, err, sizeof(err)), KT_FILE_OK);
}

static void test_empty(void **state)
{
	struct tmp *t = *state;
	struct kt_file_policy p = policy(all_words);
	char err[256];

	write_file(t, "empty", "", 0, 0644);
	expect_reading(at(t, "empty"), &p, KT_FILE_EMPTY, "file %s is empty", t->path);
	p.words = general_words;
	expect_reading(at(t, "empty"), &p, KT_FILE_EMPTY, "read %s failed", t->path);
	p.words = no_general_words;
	expect_reading(at(t, "empty"), &p, KT_FILE_EMPTY, "%s", "");
	/* out NULL: an empty file passes the checks, which do not read */
	assert_int_equal(try_read(at(t, "empty"), &p, NULL, err, sizeof(err)), KT_FILE_OK);

	p.allow_empty = true;
	expect_ok(t, "empty", &p, "", 0);
	p.max_size = 0;
	expect_ok(t, "empty", &p, "", 0);
	write_file(t, "one", "x", 1, 0644);
	p.words = all_words;
	expect(at(t, "one"), &p, KT_FILE_SIZE, "file %s is larger than 0 bytes", t->path);
}

/* No buffer for max_size + 2 bytes: KT_FILE_NOMEM, with words only if the policy has some. */
static void test_nomem(void **state)
{
	struct tmp *t = *state;
	struct kt_file_policy p = policy(all_words);
	char err[256];

	write_file(t, "f", "x", 1, 0644);
	p.max_size = PTRDIFF_MAX - 2;   /* a buffer of PTRDIFF_MAX bytes: more than exists */
	expect_reading(at(t, "f"), &p, KT_FILE_NOMEM, "no memory for %s", t->path);
	p.words = general_words;   /* NOMEM has nothing to fall back on */
	expect_reading(at(t, "f"), &p, KT_FILE_NOMEM, "%s", "");
	/* the checks alone need no buffer */
	assert_int_equal(try_read(at(t, "f"), &p, NULL, err, sizeof(err)), KT_FILE_OK);
}

/* The path in a message is escaped: a name is untrusted text. */
static void test_message_escaping(void **state)
{
	struct tmp *t = *state;
	struct kt_file_policy p = policy(all_words);
	struct kt_secret out;
	char err[256], small[12];

	expect("/nonexistent/a\"b\\c\nd\x7f", &p, KT_FILE_MISSING,
	       "file %s does not exist", "/nonexistent/a\\\"b\\\\c\\x0ad\\x7f");
	/* err is cut to errlen, NUL-terminated */
	assert_int_equal(try_read(at(t, "none"), &p, &out, small, sizeof(small)), KT_FILE_MISSING);
	assert_string_equal(small, "file /tmp/k");
	/* errlen 0: err is not touched */
	memcpy(err, "untouched", 10);
	assert_int_equal(kt_read_private_file(at(t, "none"), &p, &out, err, 0), KT_FILE_MISSING);
	assert_string_equal(err, "untouched");
	assert_int_equal(kt_read_private_file(at(t, "none"), &p, &out, NULL, 99), KT_FILE_MISSING);
}

/* Relative to a directory descriptor, whatever the working directory; absolute paths too. */
static void test_at(void **state)
{
	struct tmp *t = *state;
	struct kt_file_policy p = policy(all_words);
	struct kt_secret out;
	struct stat st;
	char err[256];
	int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(cwd >= 0);
	write_file(t, "rel", "relative", 8, 0600);
	assert_int_equal(symlinkat("rel", t->dirfd, "rel-link"), 0);
	assert_int_equal(chdir("/"), 0);
	assert_int_equal(kt_read_private_file_at(t->dirfd, "rel", &p, &out, &st, err, sizeof(err)),
	                 KT_FILE_OK);
	assert_string_equal(out.p, "relative");
	assert_int_equal(out.len, 8);
	assert_int_equal(st.st_size, 8);
	kt_secret_free(&out);
	/* not found in the working directory */
	assert_int_equal(kt_read_private_file("rel", &p, &out, err, sizeof(err)), KT_FILE_MISSING);
	assert_string_equal(err, "file rel does not exist");
	/* the same policy on names in the directory: message with the name as given */
	assert_int_equal(kt_read_private_file_at(t->dirfd, "rel-link", &p, &out, NULL, err,
	                                         sizeof(err)), KT_FILE_LINK);
	assert_string_equal(err, "file rel-link is a symbolic link");
	assert_null(out.p);
	assert_int_equal(kt_read_private_file_at(t->dirfd, "none", &p, &out, NULL, err,
	                                         sizeof(err)), KT_FILE_MISSING);
	assert_string_equal(err, "file none does not exist");
	/* an absolute path does not depend on dirfd */
	assert_int_equal(kt_read_private_file_at(-1, at(t, "rel"), &p, &out, NULL, err,
	                                         sizeof(err)), KT_FILE_OK);
	assert_string_equal(out.p, "relative");
	kt_secret_free(&out);
	assert_int_equal(fchdir(cwd), 0);
	close(cwd);
}

/* kt_file_check alone, on a status the cache got from its own open */
static void test_file_check(void **state)
{
	static const mode_t types[] = { S_IFDIR, S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK, S_IFLNK };
	struct kt_file_policy p = policy(NULL);
	struct stat st;

	(void)state;
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFREG | 0600;
	st.st_uid = geteuid();
	st.st_size = 64;
	assert_int_equal(kt_file_check(&st, &p), KT_FILE_OK);
	st.st_size = 65;
	assert_int_equal(kt_file_check(&st, &p), KT_FILE_SIZE);
	st.st_size = -1;
	assert_int_equal(kt_file_check(&st, &p), KT_FILE_SIZE);
	st.st_size = 0;
	assert_int_equal(kt_file_check(&st, &p), KT_FILE_OK);   /* empty: only a reader knows */
	st.st_mode = S_IFREG | 0620;
	assert_int_equal(kt_file_check(&st, &p), KT_FILE_MODE);
	st.st_uid = geteuid() + 1;
	assert_int_equal(kt_file_check(&st, &p), KT_FILE_OWNER);   /* owner before mode */
	p.owner_rule = KT_OWNER_ANY;
	assert_int_equal(kt_file_check(&st, &p), KT_FILE_MODE);
	p.owner_rule = KT_OWNER_UID;
	p.owner = geteuid() + 1;
	assert_int_equal(kt_file_check(&st, &p), KT_FILE_MODE);
	st.st_mode = S_IFREG | 0600;
	assert_int_equal(kt_file_check(&st, &p), KT_FILE_OK);
	st.st_uid = geteuid();
	assert_int_equal(kt_file_check(&st, &p), KT_FILE_OWNER);
	/* the type first, whatever else is wrong */
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		st.st_mode = types[i] | 0777;
		st.st_size = 1 << 20;
		assert_int_equal(kt_file_check(&st, &p), KT_FILE_TYPE);
	}
}

int main(void)
{
#define TMP_TEST(f) cmocka_unit_test_setup_teardown(f, setup_tmp, teardown_tmp)
	const struct CMUnitTest tests[] = {
		TMP_TEST(test_ok),
		TMP_TEST(test_missing),
		TMP_TEST(test_symlink),
		TMP_TEST(test_not_regular),
		TMP_TEST(test_open_error),
		TMP_TEST(test_owner),
		TMP_TEST(test_mode),
		TMP_TEST(test_size),
		cmocka_unit_test(test_size_by_reading),
		cmocka_unit_test(test_read_error),
		TMP_TEST(test_empty),
		TMP_TEST(test_nomem),
		TMP_TEST(test_message_escaping),
		TMP_TEST(test_at),
		cmocka_unit_test(test_file_check),
	};
#undef TMP_TEST

	return cmocka_run_group_tests_name("private_file", tests, NULL, NULL);
}
