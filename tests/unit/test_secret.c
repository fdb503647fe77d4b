/*
 * cmocka tests for struct kt_secret (secure.c): a secret-bearing buffer that knows its size.
 *
 * kt_secret_free zeroes all cap bytes before free(); that cannot be seen from here without
 * reading freed memory (undefined, and an error under ASan and valgrind). What is observable
 * is tested: reset zeroes the text in place, and free leaves the struct empty, accepts { 0 }
 * and a second call.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "secure.h"

static void assert_empty(const struct kt_secret *s)
{
	assert_null(s->p);
	assert_int_equal(s->len, 0);
	assert_int_equal(s->cap, 0);
}

/* p holds exactly text (len bytes) and a NUL after it */
static void assert_holds(const struct kt_secret *s, const void *text, size_t len)
{
	assert_non_null(s->p);
	assert_int_equal(s->len, len);
	assert_true(s->len < s->cap);
	assert_memory_equal(s->p, text, len);
	assert_int_equal(s->p[len], '\0');
}

static void test_alloc(void **state)
{
	struct kt_secret s;

	(void)state;
	assert_int_equal(kt_secret_alloc(&s, 16), 0);
	assert_int_equal(s.cap, 16);
	assert_holds(&s, "", 0);
	kt_secret_free(&s);
	assert_empty(&s);

	/* cap 0 is taken as 1: room for the NUL only */
	assert_int_equal(kt_secret_alloc(&s, 0), 0);
	assert_int_equal(s.cap, 1);
	assert_holds(&s, "", 0);
	assert_int_equal(kt_secret_append(&s, "x", 1), -1);
	assert_int_equal(kt_secret_append(&s, "", 0), 0);
	assert_holds(&s, "", 0);
	kt_secret_free(&s);
}

static void test_dup(void **state)
{
	static const char bin[] = { 'a', '\0', 'b', '\xff' };   /* any bytes, NUL included */
	struct kt_secret s;

	(void)state;
	assert_int_equal(kt_secret_dup(&s, "token", 5), 0);
	assert_int_equal(s.cap, 6);
	assert_holds(&s, "token", 5);
	/* full: nothing more fits */
	assert_int_equal(kt_secret_append(&s, "x", 1), -1);
	assert_holds(&s, "token", 5);
	kt_secret_free(&s);

	assert_int_equal(kt_secret_dup(&s, bin, sizeof(bin)), 0);
	assert_int_equal(s.cap, sizeof(bin) + 1);
	assert_holds(&s, bin, sizeof(bin));
	kt_secret_free(&s);

	assert_int_equal(kt_secret_dup(&s, "", 0), 0);
	assert_int_equal(s.cap, 1);
	assert_holds(&s, "", 0);
	kt_secret_free(&s);
}

static void test_append(void **state)
{
	struct kt_secret s;

	(void)state;
	assert_int_equal(kt_secret_alloc(&s, 8), 0);   /* room for 7 bytes of text */
	assert_int_equal(kt_secret_append(&s, "abc", 3), 0);
	assert_holds(&s, "abc", 3);
	assert_int_equal(kt_secret_append(&s, "", 0), 0);
	assert_holds(&s, "abc", 3);
	/* 5 more would leave no room for the NUL: refused, contents unchanged */
	assert_int_equal(kt_secret_append(&s, "defgh", 5), -1);
	assert_holds(&s, "abc", 3);
	assert_int_equal(kt_secret_append(&s, "ZZZZZZZZZZZZZZZZ", 16), -1);
	assert_holds(&s, "abc", 3);
	/* exactly up to cap - 1 */
	assert_int_equal(kt_secret_append(&s, "defg", 4), 0);
	assert_holds(&s, "abcdefg", 7);
	assert_int_equal(s.cap, 8);
	assert_int_equal(kt_secret_append(&s, "h", 1), -1);
	assert_holds(&s, "abcdefg", 7);
	assert_int_equal(kt_secret_append(&s, "", 0), 0);
	/* a huge n does not wrap around the bound */
	assert_int_equal(kt_secret_append(&s, "h", SIZE_MAX), -1);
	assert_holds(&s, "abcdefg", 7);
	kt_secret_free(&s);

	/* an empty secret has no buffer to append to */
	assert_int_equal(kt_secret_append(&s, "a", 1), -1);
	assert_int_equal(kt_secret_append(&s, "", 0), -1);
	assert_empty(&s);
}

/* A pipe holding text, its write end closed: a reader sees text then end of file. */
static int pipe_with(const char *text, size_t len)
{
	int fds[2];

	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	assert_int_equal(write(fds[1], text, len), (ssize_t)len);
	close(fds[1]);
	return fds[0];
}

static void test_read(void **state)
{
	struct kt_secret s;
	char rest[16];
	int fd;

	(void)state;
	/* all of it, up to end of file */
	fd = pipe_with("secret", 6);
	assert_int_equal(kt_secret_alloc(&s, 32), 0);
	assert_int_equal(kt_secret_read(&s, fd), 6);
	assert_holds(&s, "secret", 6);
	assert_int_equal(kt_secret_read(&s, fd), 0);   /* end of file: nothing more */
	assert_holds(&s, "secret", 6);
	close(fd);
	kt_secret_free(&s);

	/* over cap: cap - 1 bytes are read, the rest stays in the pipe */
	fd = pipe_with("0123456789", 10);
	assert_int_equal(kt_secret_alloc(&s, 5), 0);
	assert_int_equal(kt_secret_read(&s, fd), 4);
	assert_holds(&s, "0123", 4);
	/* full: reads nothing, even with more to read */
	assert_int_equal(kt_secret_read(&s, fd), 0);
	assert_holds(&s, "0123", 4);
	assert_int_equal(read(fd, rest, sizeof(rest)), 6);
	assert_memory_equal(rest, "456789", 6);
	close(fd);
	kt_secret_free(&s);

	/* after what is there: appends */
	fd = pipe_with("def", 3);
	assert_int_equal(kt_secret_dup(&s, "abc", 3), 0);
	assert_int_equal(kt_secret_read(&s, fd), 0);   /* dup leaves no room */
	kt_secret_free(&s);
	assert_int_equal(kt_secret_alloc(&s, 7), 0);
	assert_int_equal(kt_secret_append(&s, "abc", 3), 0);
	assert_int_equal(kt_secret_read(&s, fd), 3);
	assert_holds(&s, "abcdef", 6);
	close(fd);
	kt_secret_free(&s);

	/* a read error: -1, the text as it was, still NUL-terminated */
	assert_int_equal(kt_secret_alloc(&s, 8), 0);
	assert_int_equal(kt_secret_append(&s, "ab", 2), 0);
	assert_int_equal(kt_secret_read(&s, -1), -1);
	assert_holds(&s, "ab", 2);
	kt_secret_free(&s);

	/* no buffer: -1 */
	fd = pipe_with("x", 1);
	assert_int_equal(kt_secret_read(&s, fd), -1);
	assert_empty(&s);
	close(fd);
}

static void test_reset(void **state)
{
	struct kt_secret s;
	char *p;

	(void)state;
	assert_int_equal(kt_secret_alloc(&s, 16), 0);
	assert_int_equal(kt_secret_append(&s, "hunter2", 7), 0);
	p = s.p;
	kt_secret_reset(&s);
	/* the same buffer, emptied, the text's bytes zeroed in place */
	assert_ptr_equal(s.p, p);
	assert_int_equal(s.cap, 16);
	assert_int_equal(s.len, 0);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(s.p[i], '\0');
	/* ready for another fill */
	assert_int_equal(kt_secret_append(&s, "again", 5), 0);
	assert_holds(&s, "again", 5);
	kt_secret_free(&s);

	/* an empty secret: nothing to do */
	kt_secret_reset(&s);
	assert_empty(&s);
}

static void test_take(void **state)
{
	struct kt_secret s, t;
	char *p;

	(void)state;
	assert_int_equal(kt_secret_dup(&s, "moved", 5), 0);
	p = s.p;
	t = kt_secret_take(&s);
	/* the buffer, its length and size go to t; s is left empty */
	assert_ptr_equal(t.p, p);
	assert_int_equal(t.cap, 6);
	assert_holds(&t, "moved", 5);
	assert_empty(&s);
	/* s can be freed (a no-op) and refilled without touching t */
	kt_secret_free(&s);
	assert_int_equal(kt_secret_dup(&s, "other", 5), 0);
	assert_holds(&t, "moved", 5);
	kt_secret_free(&s);
	kt_secret_free(&t);
	assert_empty(&t);

	/* taking an empty secret gives an empty one */
	t = kt_secret_take(&s);
	assert_empty(&t);
	assert_empty(&s);
}

static void test_free_empties(void **state)
{
	struct kt_secret s = { 0 };

	(void)state;
	kt_secret_free(&s);   /* { 0 } */
	assert_empty(&s);
	assert_int_equal(kt_secret_dup(&s, "abc", 3), 0);
	kt_secret_free(&s);
	assert_empty(&s);
	kt_secret_free(&s);   /* twice */
	assert_empty(&s);
	/* usable again after free */
	assert_int_equal(kt_secret_alloc(&s, 4), 0);
	assert_int_equal(kt_secret_append(&s, "xyz", 3), 0);
	assert_holds(&s, "xyz", 3);
	kt_secret_free(&s);
	assert_empty(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc),
		cmocka_unit_test(test_dup),
		cmocka_unit_test(test_append),
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_take),
		cmocka_unit_test(test_free_empties),
	};

	/* a pipe whose reader is gone must fail a test, not kill the run */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("secret", tests, NULL, NULL);
}
