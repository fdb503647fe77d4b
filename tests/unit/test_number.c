/* cmocka tests for number.c: the one strict reader of unsigned numbers in text. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "number.h"

#define UNTOUCHED 12345ULL

struct num_case {
	const char *s;
	unsigned long long min, max, want;
	bool ok;
};

static void check(bool (*parse)(const char *, size_t, unsigned long long, unsigned long long,
                                unsigned long long *),
                  const struct num_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned long long v = UNTOUCHED;

		assert_int_equal(parse(c[i].s, strlen(c[i].s), c[i].min, c[i].max, &v), c[i].ok);
		assert_true(v == (c[i].ok ? c[i].want : UNTOUCHED));
	}
}

static void test_decimal(void **state)
{
	static const struct num_case c[] = {
		{ "", 0, 10, 0, false },
		{ "0", 0, 10, 0, true },
		{ "7", 0, 10, 7, true },
		{ "-1", 0, 10, 0, false },
		{ "-0", 0, 10, 0, false },
		{ "+1", 0, 10, 0, false },
		{ " 1", 0, 10, 0, false },
		{ "1 ", 0, 10, 0, false },
		{ "1\n", 0, 10, 0, false },
		{ "\t1", 0, 10, 0, false },
		{ "1e3", 0, 10000, 0, false },
		{ "0x1", 0, 10, 0, false },
		{ "1a", 0, 100, 0, false },
		{ "\xd9\xa1", 0, 10, 0, false },   /* ARABIC-INDIC DIGIT ONE: not an ASCII digit */
		/* min and max are both inclusive */
		{ "5", 5, 10, 5, true },
		{ "10", 5, 10, 10, true },
		{ "4", 5, 10, 0, false },
		{ "11", 5, 10, 0, false },
		{ "0", 1, 65535, 0, false },
		{ "65535", 1, 65535, 65535, true },
		{ "65536", 1, 65535, 0, false },
		/* the ULLONG_MAX boundary, checked digit by digit */
		{ "18446744073709551614", 0, ULLONG_MAX, ULLONG_MAX - 1, true },
		{ "18446744073709551615", 0, ULLONG_MAX, ULLONG_MAX, true },
		{ "18446744073709551616", 0, ULLONG_MAX, 0, false },
		{ "18446744073709551620", 0, ULLONG_MAX, 0, false },
		{ "19000000000000000000", 0, ULLONG_MAX, 0, false },
		{ "99999999999999999999", 0, ULLONG_MAX, 0, false },
		{ "184467440737095516150", 0, ULLONG_MAX, 0, false },
		{ "9223372036854775807", 0, INT64_MAX, INT64_MAX, true },
		{ "9223372036854775808", 0, INT64_MAX, 0, false },
		/* leading zeros: allowed, within 20 digits in all */
		{ "00", 0, 10, 0, true },
		{ "000007", 0, 10, 7, true },
		{ "00000000000000000007", 0, 10, 7, true },
		{ "000000000000000000007", 0, 10, 0, false },
		{ "01844674407370955161", 0, ULLONG_MAX, 1844674407370955161ULL, true },
	};

	(void)state;
	check(kt_parse_uint_n, c, sizeof(c) / sizeof(c[0]));
}

static void test_hex(void **state)
{
	static const struct num_case c[] = {
		{ "", 0, 255, 0, false },
		{ "00", 0, 255, 0, true },
		{ "3f", 0, 255, 0x3f, true },
		{ "3F", 0, 255, 0x3f, true },
		{ "ff", 0, 255, 255, true },
		{ "100", 0, 255, 0, false },
		{ "0x1", 0, 255, 0, false },
		{ "-1", 0, 255, 0, false },
		{ " f", 0, 255, 0, false },
		{ "g0", 0, 255, 0, false },
		{ "ffffffffffffffff", 0, ULLONG_MAX, ULLONG_MAX, true },
		{ "0ffffffffffffffff", 0, ULLONG_MAX, 0, false },
	};

	(void)state;
	check(kt_parse_hex_n, c, sizeof(c) / sizeof(c[0]));
}

/* Only s[0..len) is read: no NUL needed after it, and what follows does not count. */
static void test_length_bounds_the_input(void **state)
{
	const char digits[4] = { '1', '2', '3', '4' };   /* not NUL-terminated */
	unsigned long long v = UNTOUCHED;

	(void)state;
	assert_true(kt_parse_uint_n(digits, 2, 0, 100, &v));
	assert_true(v == 12);
	assert_true(kt_parse_uint_n(digits, sizeof(digits), 0, 9999, &v));
	assert_true(v == 1234);
	assert_true(kt_parse_uint_n("42)", 2, 0, 100, &v));
	assert_true(v == 42);
	v = UNTOUCHED;
	assert_false(kt_parse_uint_n(digits, 0, 0, 100, &v));
	assert_false(kt_parse_uint_n("1\0002", 3, 0, 1000, &v));   /* a NUL is not a digit */
	assert_false(kt_parse_uint_n(NULL, 0, 0, 100, &v));
	assert_true(v == UNTOUCHED);
}

/* kt_parse_uint: the whole NUL-terminated string, however long. */
static void test_whole_string(void **state)
{
	char long_zeros[4096];
	unsigned long long v = UNTOUCHED;

	(void)state;
	assert_true(kt_parse_uint("65535", 1, 65535, &v));
	assert_true(v == 65535);
	v = UNTOUCHED;
	assert_false(kt_parse_uint("", 0, 10, &v));
	assert_false(kt_parse_uint("12 ", 0, 100, &v));
	assert_false(kt_parse_uint(NULL, 0, 10, &v));
	memset(long_zeros, '0', sizeof(long_zeros) - 1);
	long_zeros[sizeof(long_zeros) - 1] = '\0';
	assert_false(kt_parse_uint(long_zeros, 0, 10, &v));
	assert_true(v == UNTOUCHED);
}

static void test_uint_lines(void **state)
{
	const char text[] = "hits 12\nmisses 007\nfailures -1\nopen_until 5";
	const char *p = text, *end = text + strlen(text);
	unsigned long long v = UNTOUCHED;

	(void)state;
	assert_false(kt_take_uint_line(&p, end, "misses", 0, 100, &v));   /* not the next line */
	assert_false(kt_take_uint_line(&p, end, "hit", 0, 100, &v));
	assert_false(kt_take_uint_line(&p, end, "hits", 0, 11, &v));      /* over max */
	assert_true(p == text && v == UNTOUCHED);
	assert_true(kt_take_uint_line(&p, end, "hits", 0, 100, &v));
	assert_true(v == 12 && p == text + 8);
	assert_true(kt_take_uint_line(&p, end, "misses", 0, 100, &v));
	assert_true(v == 7);
	assert_false(kt_take_uint_line(&p, end, "failures", 0, 100, &v));
	p = strchr(p, '\n') + 1;
	assert_false(kt_take_uint_line(&p, end, "open_until", 0, 100, &v));   /* no newline */
	assert_false(kt_take_uint_line(&p, p, "open_until", 0, 100, &v));     /* nothing left */
	assert_true(v == 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decimal),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_length_bounds_the_input),
		cmocka_unit_test(test_whole_string),
		cmocka_unit_test(test_uint_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
