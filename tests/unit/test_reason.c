/*
 * cmocka tests for reason.c and the rows of reason_list.h: names round-trip and are distinct,
 * and each row's class, PAM code, log priority and tool exit status agree with one another
 * as docs/design.md §4.2, §8.2 and §9 say.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <syslog.h>

#include <cmocka.h>
#include <security/pam_appl.h>

#include "reason.h"

/* `k8stoken check`'s exit statuses (docs/design.md §9) */
#define EXIT_ALLOW 0
#define EXIT_DENY 1
#define EXIT_UNAVAILABLE 2
#define EXIT_USAGE 3

struct row {
	enum kt_reason id;
	const char *name;
	enum kt_reason_class class;
	int pam, log, tool_exit;
	const char *what;
};

static const struct row rows[] = {
#define KT_REASON(id, name, class, pam, log, tool_exit, what) \
	{ KT_R_##id, name, class, pam, log, tool_exit, what },
#include "reason_list.h"
#undef KT_REASON
};

static void test_one_row_per_reason_in_enum_order(void **state)
{
	(void)state;
	assert_int_equal(KT_R_OK, 0);
	assert_int_equal(sizeof(rows) / sizeof(rows[0]), KT_R__COUNT);
	for (size_t i = 0; i < KT_R__COUNT; i++)
		assert_int_equal(rows[i].id, i);
}

static void test_names_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < KT_R__COUNT; i++) {
		const char *name = kt_reason_name(rows[i].id);

		assert_string_equal(name, rows[i].name);
		/* lower_snake: log lines and the helper protocol carry it unescaped */
		assert_true(name[0] >= 'a' && name[0] <= 'z');
		assert_int_equal(strspn(name, "abcdefghijklmnopqrstuvwxyz_"), strlen(name));
		assert_int_equal(kt_reason_from_name(name), rows[i].id);
	}
	assert_string_equal(kt_reason_name(KT_R__COUNT), "unknown");
	assert_string_equal(kt_reason_name((enum kt_reason)-1), "unknown");
	assert_int_equal(kt_reason_from_name("unknown"), KT_R__COUNT);
	assert_int_equal(kt_reason_from_name(""), KT_R__COUNT);
	assert_int_equal(kt_reason_from_name("OK"), KT_R__COUNT);
	assert_int_equal(kt_reason_from_name("ok "), KT_R__COUNT);
	assert_int_equal(kt_reason_from_name("deny_rul"), KT_R__COUNT);
}

static void test_names_are_distinct(void **state)
{
	(void)state;
	for (size_t i = 0; i < KT_R__COUNT; i++)
		for (size_t j = i + 1; j < KT_R__COUNT; j++)
			if (strcmp(rows[i].name, rows[j].name) == 0)
				fail_msg("reasons %zu and %zu are both named %s", i, j, rows[i].name);
}

static void test_class_comes_from_the_row(void **state)
{
	(void)state;
	for (size_t i = 0; i < KT_R__COUNT; i++)
		assert_int_equal(kt_reason_class(rows[i].id), rows[i].class);
	/* never fail open: exactly these two allow, and nothing out of range does */
	for (size_t i = 0; i < KT_R__COUNT; i++)
		if (rows[i].class == KT_CLASS_ALLOW && rows[i].id != KT_R_OK &&
		    rows[i].id != KT_R_OFFLINE_GRACE)
			fail_msg("%s is an allow", rows[i].name);
	assert_int_equal(kt_reason_class(KT_R_OK), KT_CLASS_ALLOW);
	assert_int_equal(kt_reason_class(KT_R_OFFLINE_GRACE), KT_CLASS_ALLOW);
	assert_int_equal(kt_reason_class(KT_R_DENY_RULE), KT_CLASS_DENY);
	assert_int_equal(kt_reason_class(KT_R_UNKNOWN_USER), KT_CLASS_DENY);
	assert_int_equal(kt_reason_class(KT_R_CONFIG), KT_CLASS_UNAVAILABLE);
	assert_int_equal(kt_reason_class(KT_R__COUNT), KT_CLASS_UNAVAILABLE);
	assert_int_equal(kt_reason_class((enum kt_reason)-1), KT_CLASS_UNAVAILABLE);
}

/* What each class implies (docs/design.md §4.2 PAM results, §8.2 priorities, §9 exit status). */
static void test_columns_agree_with_the_class(void **state)
{
	(void)state;
	for (size_t i = 0; i < KT_R__COUNT; i++) {
		const struct row *r = &rows[i];
		bool ok;

		switch (r->class) {
		case KT_CLASS_ALLOW:
			ok = r->pam == PAM_SUCCESS && r->log == LOG_INFO && r->tool_exit == EXIT_ALLOW;
			break;
		case KT_CLASS_DENY:
			ok = (r->pam == PAM_AUTH_ERR || r->pam == PAM_USER_UNKNOWN) &&
			     r->log == LOG_NOTICE && r->tool_exit == EXIT_DENY;
			break;
		case KT_CLASS_UNAVAILABLE:
			ok = r->pam != PAM_SUCCESS && r->pam != PAM_AUTH_ERR &&
			     r->pam != PAM_USER_UNKNOWN && r->pam != PAM_IGNORE && r->log == LOG_ERR &&
			     r->tool_exit == (r->id == KT_R_CONFIG ? EXIT_USAGE : EXIT_UNAVAILABLE);
			break;
		default:
			ok = false;
		}
		if (!ok)
			fail_msg("%s: class %d, PAM code %d, priority %d, exit %d do not agree", r->name,
			         r->class, r->pam, r->log, r->tool_exit);
		assert_int_equal(kt_reason_log_priority(r->id), r->log);
		assert_true(r->what[0] != '\0');
		assert_string_equal(kt_reason_what(r->id), r->what);
	}
	assert_int_equal(kt_reason_log_priority(KT_R__COUNT), LOG_ERR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_row_per_reason_in_enum_order),
		cmocka_unit_test(test_names_round_trip),
		cmocka_unit_test(test_names_are_distinct),
		cmocka_unit_test(test_class_comes_from_the_row),
		cmocka_unit_test(test_columns_agree_with_the_class),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
