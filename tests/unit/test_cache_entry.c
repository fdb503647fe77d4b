/* cmocka tests for cache_entry.c: the entry text, its MAC, and every way it can be wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cache.h"
#include "identity.h"

#define BOOT "6714bfc9-dd45-4edf-b762-b484327c05d9"
#define NAME "e-b34e82a536a37b7dc7ba675c165d3b7f34ad872bcf591d391feaa850267ab4db"
#define OTHER "e-0000000000000000000000000000000000000000000000000000000000000000"
#define NOW 1000000LL

static const unsigned char key[KT_CACHE_KEY_LEN] = "0123456789abcdef0123456789abcde";
static char *groups[] = { "system:serviceaccounts", "system:serviceaccounts:pam",
                          "system:authenticated" };
static const struct kt_identity full = {
	.username = "system:serviceaccount:pam:pam-user", .sa_namespace = "pam",
	.sa_name = "pam-user", .uid = "9c88268b-ef36-4b83-9350-7ca79554f272",
	.groups = groups, .n_groups = 3, .credential_id = "JTI=af5f4bd3",
	.pod_name = "web-1", .pod_uid = "1111", .node_name = "node-a",
};

static size_t format(const struct kt_identity *id, long long expires, char *out)
{
	return kt_cache_entry_format(key, NAME, BOOT, expires, id, out);
}

static enum kt_cache_result parse(const char *buf, size_t len, struct kt_identity *id)
{
	return kt_cache_entry_parse(key, NAME, BOOT, NOW, buf, len, id);
}

static void test_positive_round_trip(void **state)
{
	char buf[KT_CACHE_ENTRY_MAX];
	struct kt_identity id;
	size_t len = format(&full, NOW + 5000, buf);

	(void)state;
	assert_true(len > 0);
	assert_int_equal(parse(buf, len, &id), KT_CACHE_POSITIVE);
	assert_string_equal(id.username, full.username);
	assert_string_equal(id.sa_namespace, "pam");
	assert_string_equal(id.sa_name, "pam-user");
	assert_string_equal(id.uid, full.uid);
	assert_int_equal(id.n_groups, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(id.groups[i], groups[i]);
	assert_string_equal(id.credential_id, "JTI=af5f4bd3");
	assert_string_equal(id.pod_name, "web-1");
	assert_string_equal(id.pod_uid, "1111");
	assert_string_equal(id.node_name, "node-a");
	kt_identity_free(&id);
}

static void test_minimal_and_negative_round_trip(void **state)
{
	struct kt_identity minimal = { .username = "system:serviceaccount:a:b", .uid = "u" };
	char buf[KT_CACHE_ENTRY_MAX];
	struct kt_identity id;
	size_t len;

	(void)state;
	len = format(&minimal, NOW + 1, buf);
	assert_int_equal(parse(buf, len, &id), KT_CACHE_POSITIVE);
	assert_int_equal(id.n_groups, 0);
	assert_null(id.credential_id);
	assert_null(id.pod_name);
	kt_identity_free(&id);

	len = format(NULL, NOW + 1, buf);
	assert_true(len > 0);
	assert_int_equal(parse(buf, len, &id), KT_CACHE_NEGATIVE);
	assert_null(id.username);
}

static void test_expiry_boot_id_and_name_bind_the_entry(void **state)
{
	char buf[KT_CACHE_ENTRY_MAX];
	struct kt_identity id;
	size_t len = format(&full, NOW + 5000, buf);

	(void)state;
	assert_int_equal(kt_cache_entry_parse(key, NAME, BOOT, NOW + 4999, buf, len, &id),
	                 KT_CACHE_POSITIVE);
	kt_identity_free(&id);
	assert_int_equal(kt_cache_entry_parse(key, NAME, BOOT, NOW + 5000, buf, len, &id),
	                 KT_CACHE_MISS);
	assert_int_equal(kt_cache_entry_parse(key, NAME, "6714bfc9-dd45-4edf-b762-b484327c05da",
	                                      NOW, buf, len, &id), KT_CACHE_MISS);
	assert_int_equal(kt_cache_entry_parse(key, OTHER, BOOT, NOW, buf, len, &id), KT_CACHE_MISS);
	unsigned char other_key[KT_CACHE_KEY_LEN];
	memcpy(other_key, key, sizeof(other_key));
	other_key[0] ^= 1;
	assert_int_equal(kt_cache_entry_parse(other_key, NAME, BOOT, NOW, buf, len, &id),
	                 KT_CACHE_MISS);
	assert_null(id.username);
}

/* Every single-bit change and every truncation of a valid entry is a miss. */
static void test_every_flip_and_truncation_misses(void **state)
{
	char buf[KT_CACHE_ENTRY_MAX], copy[KT_CACHE_ENTRY_MAX];
	struct kt_identity id;
	size_t len = format(&full, NOW + 5000, buf), tried = 0;

	(void)state;
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(copy, buf, len);
			copy[i] = (char)(copy[i] ^ (1 << bit));
			assert_int_equal(parse(copy, len, &id), KT_CACHE_MISS);
			tried++;
		}
	}
	for (size_t cut = 0; cut < len; cut++) {
		assert_int_equal(parse(buf, cut, &id), KT_CACHE_MISS);
		tried++;
	}
	memcpy(copy, buf, len);
	memcpy(copy + len, "x\n", 2);
	assert_int_equal(parse(copy, len + 2, &id), KT_CACHE_MISS);
	print_message("%zu altered entries tried, 0 accepted\n", tried + 1);
}

static void test_identity_rewritten_without_the_key_misses(void **state)
{
	char buf[KT_CACHE_ENTRY_MAX], *at;
	struct kt_identity id;
	size_t len = format(&full, NOW + 5000, buf);

	(void)state;
	at = strstr(buf, "pam:pam-user");
	assert_non_null(at);
	memcpy(at, "pam:pam-root", 12);
	assert_int_equal(parse(buf, len, &id), KT_CACHE_MISS);
}

static void test_fields_that_would_break_lines_are_refused(void **state)
{
	char buf[KT_CACHE_ENTRY_MAX];
	struct kt_identity bad = full;
	char *bad_groups[] = { "ok", "two\nlines" };

	(void)state;
	bad.uid = "u\nresult positive";
	assert_int_equal(format(&bad, NOW + 1, buf), 0);
	bad = full;
	bad.groups = bad_groups;
	bad.n_groups = 2;
	assert_int_equal(format(&bad, NOW + 1, buf), 0);
	bad = full;
	bad.pod_name = "";
	assert_int_equal(format(&bad, NOW + 1, buf), 0);
	assert_int_equal(kt_cache_entry_format(key, NAME, "boot\nid", NOW, &full, buf), 0);
}

/* The MAC as cache.h specifies it, computed independently of cache_entry.c. */
static void spec_mac(const char *text, size_t len, char out[65])
{
	static const char domain[] = "k8stoken-entry-mac";
	unsigned char msg[4096], md[32];
	unsigned int mdlen = 0;
	size_t n = 0;

	memcpy(msg, domain, sizeof(domain));
	n += sizeof(domain);
	memcpy(msg + n, NAME, sizeof(NAME));
	n += sizeof(NAME);
	memcpy(msg + n, text, len);
	n += len;
	assert_non_null(HMAC(EVP_sha256(), key, KT_CACHE_KEY_LEN, msg, n, md, &mdlen));
	for (unsigned i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static size_t with_mac(const char *record, char *out)
{
	char mac[65];
	size_t n = strlen(record);

	spec_mac(record, n, mac);
	return (size_t)sprintf(out, "%smac %s\n", record, mac);
}

static void test_spec_mac_matches(void **state)
{
	char buf[KT_CACHE_ENTRY_MAX], again[KT_CACHE_ENTRY_MAX], *mac;
	size_t len = format(&full, NOW + 5000, buf);

	(void)state;
	mac = strstr(buf, "mac ");
	assert_non_null(mac);
	*mac = '\0';
	assert_int_equal(with_mac(buf, again), len);
	*mac = 'm';
	assert_memory_equal(again, buf, len);
}

static void test_well_macd_but_malformed_records_miss(void **state)
{
	static const char *const bodies[] = {
		"username system:serviceaccount:a:b\nuid u\ncredential c\ngroup g\n",
		"username system:serviceaccount:a:b\nuid u\npod_name p\ncredential c\n",
		"username system:serviceaccount:a:b\nuid u\nshell /bin/sh\n",
		"username kubernetes-admin\nuid u\n",
		"username system:serviceaccount:a:b:c\nuid u\n",
		"username system:serviceaccount::b\nuid u\n",
		"username system:serviceaccount:a:b\n",
		"uid u\nusername system:serviceaccount:a:b\n",
		"username system:serviceaccount:a:b\nuid \n",
	};
	char record[1024], buf[KT_CACHE_ENTRY_MAX];
	struct kt_identity id;

	(void)state;
	snprintf(record, sizeof(record), "k8stoken-cache 1\nboot_id %s\nexpires %lld\n"
	         "result positive\nusername system:serviceaccount:a:b\nuid u\n", BOOT, NOW + 10);
	assert_int_equal(parse(buf, with_mac(record, buf), &id), KT_CACHE_POSITIVE);
	kt_identity_free(&id);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		snprintf(record, sizeof(record), "k8stoken-cache 1\nboot_id %s\nexpires %lld\n"
		         "result positive\n%s", BOOT, NOW + 10, bodies[i]);
		assert_int_equal(parse(buf, with_mac(record, buf), &id), KT_CACHE_MISS);
	}
	snprintf(record, sizeof(record), "k8stoken-cache 2\nboot_id %s\nexpires %lld\n"
	         "result negative\n", BOOT, NOW + 10);
	assert_int_equal(parse(buf, with_mac(record, buf), &id), KT_CACHE_MISS);
	snprintf(record, sizeof(record), "k8stoken-cache 1\nboot_id %s\nexpires %lld\n"
	         "result maybe\n", BOOT, NOW + 10);
	assert_int_equal(parse(buf, with_mac(record, buf), &id), KT_CACHE_MISS);
	snprintf(record, sizeof(record), "k8stoken-cache 1\nboot_id %s\nexpires -5\n"
	         "result negative\n", BOOT);
	assert_int_equal(parse(buf, with_mac(record, buf), &id), KT_CACHE_MISS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_positive_round_trip),
		cmocka_unit_test(test_minimal_and_negative_round_trip),
		cmocka_unit_test(test_expiry_boot_id_and_name_bind_the_entry),
		cmocka_unit_test(test_every_flip_and_truncation_misses),
		cmocka_unit_test(test_identity_rewritten_without_the_key_misses),
		cmocka_unit_test(test_fields_that_would_break_lines_are_refused),
		cmocka_unit_test(test_spec_mac_matches),
		cmocka_unit_test(test_well_macd_but_malformed_records_miss),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
