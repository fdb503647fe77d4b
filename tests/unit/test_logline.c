/*
 * cmocka tests for the log line's detail: hostile text (from a server, a token or the helper)
 * is escaped exactly once, by the log writer, on every path into the decision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "decide.h"
#include "helper_proto.h"
#include "logline.h"
#include "secure.h"

/* newline, quote, backslash, a non-ASCII byte and an escape sequence's ESC */
#define HOSTILE "bad\nline \"quoted\" back\\slash caf\xc3\xa9 \x1b[31m"
#define ESCAPED "bad\\x0aline \\\"quoted\\\" back\\\\slash caf\\xc3\\xa9 \\x1b[31m"

static const char *detail_of(const char *line)
{
	const char *d = strstr(line, " detail=\"");

	assert_non_null(d);
	return d + strlen(" detail=");
}

static void test_hostile_detail_escaped_once(void **state)
{
	struct kt_decision d;
	char line[2048];

	(void)state;
	memset(&d, 0, sizeof(d));
	d.reason = KT_R_UNAUTHENTICATED;
	snprintf(d.detail, sizeof(d.detail), "%s", HOSTILE);
	kt_logline_format(&d, "alice", NULL, line, sizeof(line));
	assert_string_equal(detail_of(line), "\"" ESCAPED "\"");
	assert_null(strchr(line, '\n'));
}

/* The helper's record carries the detail escaped; the module holds the text it stands for. */
static void test_helper_detail_escaped_once(void **state)
{
	static const char record[] = "kt-review/1\nreason unauthenticated\nhttp 401\nserver 0\n"
	                             "detail " ESCAPED "\nbody 0\nend\n";
	struct kt_helper_result r;
	struct kt_decision d;
	char line[2048];

	(void)state;
	assert_int_equal(kt_proto_parse(record, sizeof(record) - 1, &r), KT_R_OK);
	memset(&d, 0, sizeof(d));
	d.reason = r.reason;
	assert_int_equal(kt_unescape(r.detail, d.detail, sizeof(d.detail)), 0);
	assert_string_equal(d.detail, HOSTILE);
	kt_helper_result_free(&r);
	kt_logline_format(&d, "alice", NULL, line, sizeof(line));
	assert_string_equal(detail_of(line), "\"" ESCAPED "\"");
}

/* A detail that is not escaped text is not a record: raw bytes never reach the module. */
static void test_helper_detail_must_be_escaped_text(void **state)
{
	static const char *const bad[] = { "a\"b", "a\\b", "a\\x0", "a\\x0A", "a\\x00b", "caf\xc3\xa9",
	                                   "\x1b[31m", "tab\there", "a\\" };
	struct kt_helper_result r;
	char record[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n = snprintf(record, sizeof(record), "kt-review/1\nreason unauthenticated\nhttp 401\n"
		                 "server 0\ndetail %s\nbody 0\nend\n", bad[i]);

		assert_true(n > 0 && (size_t)n < sizeof(record));
		assert_int_equal(kt_proto_parse(record, (size_t)n, &r), KT_R_HELPER);
		kt_helper_result_free(&r);
	}
}

/* kt_unescape undoes kt_escape, including its "..." cut. */
static void test_unescape_round_trip(void **state)
{
	char esc[64], back[64];

	(void)state;
	kt_escape(HOSTILE, strlen(HOSTILE), esc, sizeof(esc));
	assert_int_equal(kt_unescape(esc, back, sizeof(back)), 0);
	assert_string_equal(back, HOSTILE);
	kt_escape(HOSTILE HOSTILE, strlen(HOSTILE HOSTILE), esc, sizeof(esc));
	assert_int_equal(kt_unescape(esc, back, sizeof(back)), 0);
	assert_int_equal(strcmp(back + strlen(back) - 3, "..."), 0);
	assert_int_equal(kt_unescape("abcdef", back, 4), -1);   /* does not fit */
	assert_string_equal(back, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_detail_escaped_once),
		cmocka_unit_test(test_helper_detail_escaped_once),
		cmocka_unit_test(test_helper_detail_must_be_escaped_text),
		cmocka_unit_test(test_unescape_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
