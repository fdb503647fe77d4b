/* cmocka tests for config.c: file grammar, every key, cross-key rules, safe loading, args. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "rules.h"

#define BASE \
	"server = https://k8s.example:6443\n" \
	"ca_file = /etc/pam_k8stoken/ca.crt\n" \
	"reviewer_token_file = /etc/pam_k8stoken/reviewer.token\n" \
	"audience = ssh://bastion-1\n"

static enum kt_reason parse(struct kt_config *cfg, const char *text, size_t len,
			    char *err, size_t errlen)
{
	kt_config_init(cfg);
	return kt_config_parse_buffer(cfg, "t.conf", text, len, err, errlen);
}

/* Parses text, expects exactly `want` as the message (NULL: success). */
static void expect(const char *text, const char *want)
{
	struct kt_config cfg;
	char err[512];
	enum kt_reason r = parse(&cfg, text, strlen(text), err, sizeof(err));

	if (want == NULL) {
		if (r != KT_R_OK)
			print_error("unexpected error: %s\nin:\n%s\n", err, text);
		assert_int_equal(r, KT_R_OK);
		assert_string_equal(err, "");
	} else {
		if (r != KT_R_CONFIG || strcmp(err, want) != 0)
			print_error("in:\n%s\nexpected: %s\n", text, want);
		assert_int_equal(r, KT_R_CONFIG);
		assert_string_equal(err, want);
	}
	kt_config_free(&cfg);
}

/* ---- one line appended to a valid base (it becomes line 5) ---- */

struct line_case {
	const char *line;
	const char *msg;   /* after "t.conf:5: "; NULL = accepted */
};

static const struct line_case line_cases[] = {
	/* timeout 1..60 */
	{ "timeout = 1", NULL },
	{ "timeout = 60", NULL },
	{ "timeout=5", NULL },
	{ "  \ttimeout\t=\t5 \t", NULL },
	{ "timeout = 05", NULL },
	{ "timeout = 0", "timeout: \"0\" is not a number between 1 and 60" },
	{ "timeout = 61", "timeout: \"61\" is not a number between 1 and 60" },
	{ "timeout = -1", "timeout: \"-1\" is not a number between 1 and 60" },
	{ "timeout = +5", "timeout: \"+5\" is not a number between 1 and 60" },
	{ "timeout = 5s", "timeout: \"5s\" is not a number between 1 and 60" },
	{ "timeout = abc", "timeout: \"abc\" is not a number between 1 and 60" },
	{ "timeout = 0x10", "timeout: \"0x10\" is not a number between 1 and 60" },
	{ "timeout = 1 0", "timeout: \"1 0\" is not a number between 1 and 60" },
	{ "timeout = 5.0", "timeout: \"5.0\" is not a number between 1 and 60" },
	{ "timeout = 99999999999999999999999",
	  "timeout: \"99999999999999999999999\" is not a number between 1 and 60" },
	{ "timeout = 5 # seconds", "timeout: \"5 # seconds\" is not a number between 1 and 60" },
	{ "timeout =", "timeout: value is empty" },
	{ "timeout =   \t", "timeout: value is empty" },
	{ "timeout 5", "timeout: expected \"timeout = value\"" },
	{ "timeout", "timeout: expected \"timeout = value\"" },
	/* connect_timeout 1..30 (and <= timeout, default 5) */
	{ "connect_timeout = 1", NULL },
	{ "connect_timeout = 5", NULL },
	{ "connect_timeout = 0", "connect_timeout: \"0\" is not a number between 1 and 30" },
	{ "connect_timeout = 31", "connect_timeout: \"31\" is not a number between 1 and 30" },
	{ "connect_timeout = -2", "connect_timeout: \"-2\" is not a number between 1 and 30" },
	{ "connect_timeout = 6", "connect_timeout (6) must not exceed timeout (5)" },
	/* cache_ttl 0..3600 */
	{ "cache_ttl = 0", NULL },
	{ "cache_ttl = 3600", NULL },
	{ "cache_ttl = 3601", "cache_ttl: \"3601\" is not a number between 0 and 3600" },
	{ "cache_ttl = -0", "cache_ttl: \"-0\" is not a number between 0 and 3600" },
	{ "cache_ttl = ", "cache_ttl: value is empty" },
	/* negative_cache_ttl 0..300 */
	{ "negative_cache_ttl = 0", NULL },
	{ "negative_cache_ttl = 300", NULL },
	{ "negative_cache_ttl = 301",
	  "negative_cache_ttl: \"301\" is not a number between 0 and 300" },
	{ "negative_cache_ttl = ten",
	  "negative_cache_ttl: \"ten\" is not a number between 0 and 300" },
	/* min_uid 0..4294967294 */
	{ "min_uid = 0", NULL },
	{ "min_uid = 4294967294", NULL },
	{ "min_uid = 4294967295",
	  "min_uid: \"4294967295\" is not a number between 0 and 4294967294" },
	{ "min_uid = -1", "min_uid: \"-1\" is not a number between 0 and 4294967294" },
	{ "min_uid = 18446744073709551616",
	  "min_uid: \"18446744073709551616\" is not a number between 0 and 4294967294" },
	/* max_token_size 64..1048576 */
	{ "max_token_size = 64", NULL },
	{ "max_token_size = 1048576", NULL },
	{ "max_token_size = 63", "max_token_size: \"63\" is not a number between 64 and 1048576" },
	{ "max_token_size = 1048577",
	  "max_token_size: \"1048577\" is not a number between 64 and 1048576" },
	{ "max_token_size = 16k", "max_token_size: \"16k\" is not a number between 64 and 1048576" },
	/* booleans */
	{ "allow_root = yes", NULL },
	{ "allow_root = no", NULL },
	{ "allow_root = true", NULL },
	{ "allow_root = false", NULL },
	{ "allow_root = Yes", "allow_root: \"Yes\" is not yes, no, true or false" },
	{ "allow_root = 1", "allow_root: \"1\" is not yes, no, true or false" },
	{ "allow_root = on", "allow_root: \"on\" is not yes, no, true or false" },
	{ "allow_root = yes please", "allow_root: \"yes please\" is not yes, no, true or false" },
	{ "allow_root =", "allow_root: value is empty" },
	{ "allow_legacy_tokens = yes", NULL },
	{ "allow_legacy_tokens = no", NULL },
	{ "allow_legacy_tokens = NO", "allow_legacy_tokens: \"NO\" is not yes, no, true or false" },
	/* paths */
	{ "cache_dir = /var/cache/k8stoken", NULL },
	{ "cache_dir = run/pam_k8stoken", "cache_dir: \"run/pam_k8stoken\" is not an absolute path" },
	{ "cache_dir = ~/cache", "cache_dir: \"~/cache\" is not an absolute path" },
	{ "cache_dir = /a b", "cache_dir: \"/a b\" contains whitespace or a control character" },
	{ "cache_dir = /a\tb", "cache_dir: \"/a\\x09b\" contains whitespace or a control character" },
	{ "cache_dir =", "cache_dir: value is empty" },
	{ "ca_file = /etc/other.crt", "ca_file: given twice (first on line 2)" },
	{ "reviewer_token_file = /x", "reviewer_token_file: given twice (first on line 3)" },
	/* prompt */
	{ "prompt = Token:", NULL },
	{ "prompt = \"Token: \"", NULL },
	{ "prompt = \"  padded  \"", NULL },
	{ "prompt = Token #1:", NULL },
	{ "prompt = say \"hi\":", NULL },
	{ "prompt = J\xc3\xb6ton \xe2\x86\x92", NULL },
	{ "prompt = \"Token: ", "prompt: missing closing '\"'" },
	{ "prompt = \"", "prompt: missing closing '\"'" },
	{ "prompt = \"\"", "prompt: is empty" },
	{ "prompt = \xc2\x9b" "31m", "prompt: contains a control character or invalid UTF-8" },
	{ "prompt = \xff", "prompt: contains a control character or invalid UTF-8" },
	{ "prompt = \xc0\xaf", "prompt: contains a control character or invalid UTF-8" },
	{ "prompt = \xed\xa0\x80", "prompt: contains a control character or invalid UTF-8" },
	{ "prompt = \xe2\x86", "prompt: contains a control character or invalid UTF-8" },
	{ "prompt = a\tb", "prompt: contains a control character or invalid UTF-8" },
	{ "prompt = \x1b[31mred", "contains a control character (\\x1b)" },
	/* server (docs/security.md B04) */
	{ "server = https://10.0.0.11:6443", NULL },
	{ "server = https://[::1]:6443", NULL },
	{ "server = https://[fd00::1]", NULL },
	{ "server = https://api.k8s.example/prefix/path", NULL },
	{ "server = https://h/p%2Fq", NULL },
	{ "server = https://k8s.example:6443/", "server: \"https://k8s.example:6443/\" is given twice" },
	{ "server = https://k8s.example:6443", "server: \"https://k8s.example:6443\" is given twice" },
	{ "server = http://k8s.example:6443", "server: \"http://k8s.example:6443\" is not an https:// URL" },
	{ "server = file:///etc/passwd", "server: \"file:///etc/passwd\" is not an https:// URL" },
	{ "server = ftp://h", "server: \"ftp://h\" is not an https:// URL" },
	{ "server = HTTPS://h", "server: \"HTTPS://h\" is not an https:// URL" },
	{ "server = https:/h", "server: \"https:/h\" is not an https:// URL" },
	{ "server = k8s.example:6443", "server: \"k8s.example:6443\" is not an https:// URL" },
	{ "server = 10.0.0.1", "server: \"10.0.0.1\" is not an https:// URL" },
	{ "server = https://user@host", "server: \"https://user@host\" must not contain user information ('@')" },
	{ "server = https://u:p@host:6443", "server: \"https://u:p@host:6443\" must not contain user information ('@')" },
	{ "server = https://host/a@b", "server: \"https://host/a@b\" must not contain user information ('@')" },
	{ "server = https://", "server: \"https://\" has no host" },
	{ "server = https:///path", "server: \"https:///path\" has no host" },
	{ "server = https://:6443", "server: \"https://:6443\" has no host" },
	{ "server = https://host?x=1", "server: \"https://host?x=1\" must not contain a query or a fragment" },
	{ "server = https://host/#frag", "server: \"https://host/#frag\" must not contain a query or a fragment" },
	{ "server = https://ho st", "server: \"https://ho st\" contains whitespace, a control or a non-ASCII character" },
	{ "server = https://h\xc3\xa9", "server: \"https://h\\xc3\\xa9\" contains whitespace, a control or a non-ASCII character" },
	{ "server = https://host:", "server: \"https://host:\" has an invalid port" },
	{ "server = https://host:0", "server: \"https://host:0\" has an invalid port" },
	{ "server = https://host:65536", "server: \"https://host:65536\" has an invalid port" },
	{ "server = https://host:123456", "server: \"https://host:123456\" has an invalid port" },
	{ "server = https://host:http", "server: \"https://host:http\" has an invalid port" },
	{ "server = https://host:1:2", "server: \"https://host:1:2\" has an invalid port" },
	{ "server = https://-host", "server: \"https://-host\" has an invalid host name" },
	{ "server = https://host_name", "server: \"https://host_name\" has an invalid host name" },
	{ "server = https://[::1", "server: \"https://[::1\" has an invalid IPv6 address" },
	{ "server = https://[]", "server: \"https://[]\" has an invalid IPv6 address" },
	{ "server = https://[::g]", "server: \"https://[::g]\" has an invalid IPv6 address" },
	{ "server = https://[::1]x", "server: \"https://[::1]x\" has an invalid host" },
	{ "server = https://h/p%2", "server: \"https://h/p%2\" has an invalid percent escape in its path" },
	{ "server = https://h/<x>", "server: \"https://h/<x>\" has an invalid character in its path" },
	{ "server = https://h/a\\b", "server: \"https://h/a\\\\b\" has an invalid character in its path" },
	{ "server =", "server: value is empty" },
	/* audience */
	{ "audience = https://kubernetes.default.svc", NULL },
	{ "audience = a", NULL },
	{ "audience = ssh://bastion-1", "audience: \"ssh://bastion-1\" is given twice" },
	{ "audience = a b", "audience: \"a b\" must be printable ASCII without spaces, quotes or backslashes" },
	{ "audience = a\"b", "audience: \"a\\\"b\" must be printable ASCII without spaces, quotes or backslashes" },
	{ "audience = a\\b", "audience: \"a\\\\b\" must be printable ASCII without spaces, quotes or backslashes" },
	{ "audience = \xc3\xa9", "audience: \"\\xc3\\xa9\" must be printable ASCII without spaces, quotes or backslashes" },
	{ "audience =", "audience: value is empty" },
	/* grammar */
	{ "", NULL },
	{ "   \t  ", NULL },
	{ "# comment", NULL },
	{ "   # indented comment", NULL },
	{ "#timeout = abc", NULL },
	{ "foo = bar", "unknown key \"foo\"" },
	{ "Timeout = 5", "unknown key \"Timeout\"" },
	{ "timeout: 5", "unknown key \"timeout:\"" },
	{ "server_url = https://h", "unknown key \"server_url\"" },
	{ "= 5", "expected \"key = value\", found no key" },
	{ "timeout = 5\r", "contains a control character (\\x0d)" },
	{ "timeout = \x7f", "contains a control character (\\x7f)" },
	{ "k\xc3\xa9y = 1", "unknown key \"k\\xc3\\xa9y\"" },
	/* rule lines are handed to rules.c and get the file:line prefix */
	{ "map serviceaccount:ops/deployer deploy", NULL },
	{ "map\tgroup:system:serviceaccounts:oncall\toncall", NULL },
	{ "deny serviceaccount:kube-system/*", NULL },
	{ "map", "map: expected \"map SUBJECT LOCAL-USER\", found 0 words after map" },
	{ "deny group:x y", "deny: expected \"deny SUBJECT\", found 2 words after deny" },
	{ "map = foo", "map: unknown subject \"=\" (expected serviceaccount:NS/NAME or group:GROUP)" },
	{ "map=foo", "unknown key \"map\"" },
	{ "mapping = x", "unknown key \"mapping\"" },
	{ "map serviceaccount:Ops/x deploy",
	  "map: \"serviceaccount:Ops/x\": the namespace pattern must be 1 to 256 of a-z, 0-9, '-', '*', '?'" },
};

static void test_line_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
		const struct line_case *c = &line_cases[i];
		char text[1024], want[512];

		snprintf(text, sizeof(text), BASE "%s\n", c->line);
		if (c->msg != NULL)
			snprintf(want, sizeof(want), "t.conf:5: %s", c->msg);
		expect(text, c->msg != NULL ? want : NULL);
	}
}

/* ---- values and defaults ---- */

static void test_defaults(void **state)
{
	struct kt_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(parse(&cfg, BASE, strlen(BASE), err, sizeof(err)), KT_R_OK);
	assert_string_equal(cfg.path, "t.conf");
	assert_int_equal(cfg.n_servers, 1);
	assert_string_equal(cfg.servers[0], "https://k8s.example:6443");
	assert_string_equal(cfg.ca_file, "/etc/pam_k8stoken/ca.crt");
	assert_string_equal(cfg.reviewer_token_file, "/etc/pam_k8stoken/reviewer.token");
	assert_null(cfg.client_cert_file);
	assert_null(cfg.client_key_file);
	assert_int_equal(cfg.n_audiences, 1);
	assert_string_equal(cfg.audiences[0], "ssh://bastion-1");
	assert_int_equal(cfg.connect_timeout, 2);
	assert_int_equal(cfg.timeout, 5);
	assert_string_equal(cfg.cache_dir, KT_DEFAULT_CACHE_DIR);
	assert_int_equal(cfg.cache_ttl, 30);
	assert_int_equal(cfg.negative_cache_ttl, 5);
	assert_false(cfg.allow_legacy_tokens);
	assert_int_equal(cfg.min_uid, 1000);
	assert_false(cfg.allow_root);
	assert_int_equal(cfg.max_token_size, 16384);
	assert_string_equal(cfg.prompt, "Kubernetes token: ");
	assert_int_equal(cfg.n_rules, 0);
	assert_null(cfg.helper);
	assert_false(cfg.debug);
	kt_config_free(&cfg);
}

static void test_every_key(void **state)
{
	static const char text[] =
		"# full example\n"
		"server = https://10.0.0.10:6443/\n"
		"server = https://10.0.0.11:6443\n"
		"server = https://[fd00::2]:443/k8s//\n"
		"ca_file = /etc/pam_k8stoken/ca.crt\n"
		"client_cert_file = /etc/pam_k8stoken/client.crt\n"
		"client_key_file = /etc/pam_k8stoken/client.key\n"
		"audience = ssh://bastion-1\n"
		"audience = sudo\n"
		"connect_timeout = 3\n"
		"timeout = 7\n"
		"cache_dir = /var/lib/k8stoken\n"
		"cache_ttl = 0\n"
		"negative_cache_ttl = 300\n"
		"allow_legacy_tokens = true\n"
		"min_uid = 0\n"
		"allow_root = yes\n"
		"max_token_size = 65536\n"
		"prompt = \"  SA token # (k8s): \"\n"
		"\n"
		"map  serviceaccount:ops/deployer   deploy\n"
		"map  serviceaccount:team-*/*        {name}\n"
		"map  group:system:serviceaccounts:oncall  oncall\n"
		"deny serviceaccount:kube-system/*\n";
	struct kt_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(parse(&cfg, text, strlen(text), err, sizeof(err)), KT_R_OK);
	assert_int_equal(cfg.n_servers, 3);
	assert_string_equal(cfg.servers[0], "https://10.0.0.10:6443");
	assert_string_equal(cfg.servers[1], "https://10.0.0.11:6443");
	assert_string_equal(cfg.servers[2], "https://[fd00::2]:443/k8s");
	assert_null(cfg.reviewer_token_file);
	assert_string_equal(cfg.client_cert_file, "/etc/pam_k8stoken/client.crt");
	assert_string_equal(cfg.client_key_file, "/etc/pam_k8stoken/client.key");
	assert_int_equal(cfg.n_audiences, 2);
	assert_string_equal(cfg.audiences[1], "sudo");
	assert_int_equal(cfg.connect_timeout, 3);
	assert_int_equal(cfg.timeout, 7);
	assert_string_equal(cfg.cache_dir, "/var/lib/k8stoken");
	assert_int_equal(cfg.cache_ttl, 0);
	assert_int_equal(cfg.negative_cache_ttl, 300);
	assert_true(cfg.allow_legacy_tokens);
	assert_int_equal(cfg.min_uid, 0);
	assert_true(cfg.allow_root);
	assert_int_equal(cfg.max_token_size, 65536);
	assert_string_equal(cfg.prompt, "  SA token # (k8s): ");
	assert_int_equal(cfg.n_rules, 4);
	assert_int_equal(cfg.rules[0].action, KT_RULE_MAP);
	assert_int_equal(cfg.rules[0].line, 21);
	assert_string_equal(cfg.rules[0].namespace_glob, "ops");
	assert_string_equal(cfg.rules[0].name_glob, "deployer");
	assert_string_equal(cfg.rules[0].user_template, "deploy");
	assert_string_equal(cfg.rules[1].namespace_glob, "team-*");
	assert_string_equal(cfg.rules[1].user_template, "{name}");
	assert_int_equal(cfg.rules[2].subject, KT_SUBJECT_GROUP);
	assert_string_equal(cfg.rules[2].group_glob, "system:serviceaccounts:oncall");
	assert_int_equal(cfg.rules[3].action, KT_RULE_DENY);
	assert_int_equal(cfg.rules[3].line, 24);
	assert_null(cfg.rules[3].user_template);
	kt_config_free(&cfg);
	assert_null(cfg.servers);
	assert_int_equal(cfg.n_rules, 0);
}

static void test_values_stored(void **state)
{
	struct kt_config cfg;
	char err[256];
	static const char a[] = BASE "min_uid = 4294967294\nallow_root = false\n"
		"prompt = Token:   \nconnect_timeout = 5\n";

	(void)state;
	assert_int_equal(parse(&cfg, a, strlen(a), err, sizeof(err)), KT_R_OK);
	assert_int_equal(cfg.min_uid, 4294967294UL);
	assert_false(cfg.allow_root);
	assert_string_equal(cfg.prompt, "Token:");   /* unquoted: trailing spaces trimmed */
	assert_int_equal(cfg.connect_timeout, 5);
	kt_config_free(&cfg);
}

/* ---- whole-file and cross-key cases, exact messages ---- */

struct file_case {
	const char *text;
	const char *msg;   /* full message; NULL = accepted */
};

#define SRV "server = https://h\n"
#define CA  "ca_file = /ca\n"
#define AUD "audience = a\n"
#define TOK "reviewer_token_file = /tok\n"
#define CRT "client_cert_file = /crt\n"
#define KEY "client_key_file = /key\n"

static const struct file_case file_cases[] = {
	{ "", "t.conf: missing required key \"server\"" },
	{ "# only a comment\n\n", "t.conf: missing required key \"server\"" },
	{ CA AUD TOK, "t.conf: missing required key \"server\"" },
	{ SRV AUD TOK, "t.conf: missing required key \"ca_file\"" },
	{ SRV CA TOK, "t.conf: missing required key \"audience\"" },
	{ SRV CA AUD, "t.conf: missing credential: set reviewer_token_file, or client_cert_file and client_key_file" },
	{ SRV CA AUD TOK, NULL },
	{ SRV CA AUD CRT KEY, NULL },
	{ SRV CA AUD KEY CRT, NULL },
	{ SRV CA AUD TOK CRT KEY, "t.conf:6: reviewer_token_file and client_cert_file/client_key_file are mutually exclusive: configure one credential" },
	{ SRV CA AUD CRT TOK, "t.conf:5: reviewer_token_file and client_cert_file/client_key_file are mutually exclusive: configure one credential" },
	{ SRV CA AUD KEY TOK, "t.conf:5: reviewer_token_file and client_cert_file/client_key_file are mutually exclusive: configure one credential" },
	{ SRV CA AUD CRT, "t.conf:4: client_cert_file: requires client_key_file" },
	{ SRV CA AUD KEY, "t.conf:4: client_key_file: requires client_cert_file" },
	{ SRV CA AUD TOK "client_cert_file = crt\n", "t.conf:5: client_cert_file: \"crt\" is not an absolute path" },
	{ SRV CA AUD "reviewer_token_file = tok\n", "t.conf:4: reviewer_token_file: \"tok\" is not an absolute path" },
	{ SRV "ca_file = ca.crt\n", "t.conf:2: ca_file: \"ca.crt\" is not an absolute path" },
	/* timeouts */
	{ SRV CA AUD TOK "timeout = 1\n", NULL },   /* default connect_timeout follows */
	{ SRV CA AUD TOK "connect_timeout = 10\ntimeout = 9\n", "t.conf:6: connect_timeout (10) must not exceed timeout (9)" },
	{ SRV CA AUD TOK "timeout = 9\nconnect_timeout = 10\n", "t.conf:6: connect_timeout (10) must not exceed timeout (9)" },
	{ SRV CA AUD TOK "connect_timeout = 30\ntimeout = 30\n", NULL },
	/* duplicates name the first line */
	{ SRV CA AUD TOK "\n# c\ntimeout = 5\ntimeout = 5\n", "t.conf:8: timeout: given twice (first on line 7)" },
	{ SRV CA AUD TOK "prompt = a\nprompt = b\n", "t.conf:6: prompt: given twice (first on line 5)" },
	{ SRV CA AUD TOK "allow_root = no\nallow_root = no\n", "t.conf:6: allow_root: given twice (first on line 5)" },
	{ SRV CA AUD TOK TOK, "t.conf:5: reviewer_token_file: given twice (first on line 4)" },
	/* line numbers count comments and blank lines; no trailing newline is fine */
	{ "# a\n\n   \n# b\n" SRV CA AUD TOK "bogus = 1", "t.conf:9: unknown key \"bogus\"" },
	{ SRV CA AUD "reviewer_token_file = /tok", NULL },
	{ SRV "\n\n\n" "server = http://h\n", "t.conf:5: server: \"http://h\" is not an https:// URL" },
	/* the first error wins, even before cross-key errors */
	{ "timeout = x\n", "t.conf:1: timeout: \"x\" is not a number between 1 and 60" },
	/* CRLF files are refused, not half-understood */
	{ "server = https://h\r\n", "t.conf:1: contains a control character (\\x0d)" },
	{ "\r\n", "t.conf:1: contains a control character (\\x0d)" },
	/* rule errors get file:line */
	{ SRV CA AUD TOK "map serviceaccount:a/b {user}\n", "t.conf:5: map: template \"{user}\" has an unknown placeholder or unbalanced brace (only {namespace} and {name} are known)" },
	{ SRV CA AUD TOK "deny serviceaccount:a\n", "t.conf:5: deny: \"serviceaccount:a\" must be serviceaccount:NAMESPACE-GLOB/NAME-GLOB" },
};

static void test_file_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(file_cases) / sizeof(file_cases[0]); i++) {
		expect(file_cases[i].text, file_cases[i].msg);
	}
}

static void test_connect_timeout_follows_timeout(void **state)
{
	struct kt_config cfg;
	char err[256];
	static const char t[] = BASE "timeout = 1\n";

	(void)state;
	assert_int_equal(parse(&cfg, t, strlen(t), err, sizeof(err)), KT_R_OK);
	assert_int_equal(cfg.connect_timeout, 1);
	assert_int_equal(cfg.timeout, 1);
	kt_config_free(&cfg);
}

static void test_server_limit(void **state)
{
	char text[2048];
	size_t o;

	(void)state;
	o = (size_t)snprintf(text, sizeof(text), "%s", CA AUD TOK);
	for (int i = 1; i <= 8; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "server = https://s%d\n", i);
	expect(text, NULL);
	snprintf(text + o, sizeof(text) - o, "server = https://s9\n");
	expect(text, "t.conf:12: server: more than 8 servers");
}

static void test_audience_limit(void **state)
{
	char text[2048];
	size_t o;

	(void)state;
	o = (size_t)snprintf(text, sizeof(text), "%s", SRV CA TOK);
	for (int i = 1; i <= 16; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "audience = aud-%d\n", i);
	expect(text, NULL);
	snprintf(text + o, sizeof(text) - o, "audience = aud-17\n");
	expect(text, "t.conf:20: audience: more than 16 audiences");
}

static void test_nul_byte(void **state)
{
	static const char text[] = BASE "timeout = 5\0junk\n";
	struct kt_config cfg;
	char err[256];

	(void)state;
	assert_int_equal(parse(&cfg, text, sizeof(text) - 1, err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, "t.conf:5: contains a NUL byte");
	kt_config_free(&cfg);
	/* a NUL inside a comment counts too */
	assert_int_equal(parse(&cfg, "#\0\n", 3, err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, "t.conf:1: contains a NUL byte");
	kt_config_free(&cfg);
}

static void test_long_line(void **state)
{
	size_t base = strlen(BASE);
	char *text = malloc(base + 4098 + 2);
	struct kt_config cfg;
	char err[256];

	(void)state;
	assert_non_null(text);
	memcpy(text, BASE, base);
	/* a 4096-character comment is accepted */
	text[base] = '#';
	memset(text + base + 1, 'x', 4095);
	text[base + 4096] = '\n';
	assert_int_equal(parse(&cfg, text, base + 4097, err, sizeof(err)), KT_R_OK);
	kt_config_free(&cfg);
	/* 4097 is not, with or without the final newline */
	text[base + 4096] = 'x';
	text[base + 4097] = '\n';
	assert_int_equal(parse(&cfg, text, base + 4098, err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, "t.conf:5: line is longer than 4096 characters");
	kt_config_free(&cfg);
	assert_int_equal(parse(&cfg, text, base + 4097, err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, "t.conf:5: line is longer than 4096 characters");
	kt_config_free(&cfg);
	free(text);
}

static void test_message_escaping_and_truncation(void **state)
{
	struct kt_config cfg;
	char err[24], big[512];
	static const char t[] = BASE "cache_dir = rel\x01\n";
	char text[4200];

	(void)state;
	/* a control byte is reported, not echoed */
	assert_int_equal(parse(&cfg, t, strlen(t), big, sizeof(big)), KT_R_CONFIG);
	assert_string_equal(big, "t.conf:5: contains a control character (\\x01)");
	kt_config_free(&cfg);
	/* a small buffer is cut, still terminated */
	assert_int_equal(parse(&cfg, "x = 1\n", 6, err, sizeof(err)), KT_R_CONFIG);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_memory_equal(err, "t.conf:1: unknown key \"", sizeof(err) - 1);
	kt_config_free(&cfg);
	/* no buffer at all */
	assert_int_equal(parse(&cfg, "x = 1\n", 6, NULL, 0), KT_R_CONFIG);
	kt_config_free(&cfg);
	/* NULL text of length 0 is an empty file */
	assert_int_equal(parse(&cfg, NULL, 0, big, sizeof(big)), KT_R_CONFIG);
	assert_string_equal(big, "t.conf: missing required key \"server\"");
	kt_config_free(&cfg);
	/* a long value is capped with "..." */
	snprintf(text, sizeof(text), BASE "audience = %0*d \n", 3000, 0);
	memcpy(strstr(text, "audience = 0") + 11, "x y", 3);
	assert_int_equal(parse(&cfg, text, strlen(text), big, sizeof(big)), KT_R_CONFIG);
	assert_non_null(strstr(big, "...\" must be printable ASCII"));
	assert_true(strlen(big) < 300);
	kt_config_free(&cfg);
}

static void test_parse_uint(void **state)
{
	static const struct {
		const char *s;
		unsigned long long min, max, want;
		bool ok;
	} c[] = {
		{ "0", 0, 10, 0, true },
		{ "10", 0, 10, 10, true },
		{ "11", 0, 10, 0, false },
		{ "000007", 0, 10, 7, true },
		{ "18446744073709551615", 0, ULLONG_MAX, ULLONG_MAX, true },
		{ "18446744073709551616", 0, ULLONG_MAX, 0, false },
		{ "99999999999999999999999", 0, ULLONG_MAX, 0, false },
		{ "", 0, 10, 0, false },
		{ " 1", 0, 10, 0, false },
		{ "1 ", 0, 10, 0, false },
		{ "+1", 0, 10, 0, false },
		{ "-0", 0, 10, 0, false },
		{ "1e3", 0, 10000, 0, false },
		{ "0x1", 0, 10, 0, false },
		{ "5", 6, 10, 0, false },
	};
	unsigned long long v;

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		v = 12345;
		assert_int_equal(kt_parse_uint(c[i].s, c[i].min, c[i].max, &v), c[i].ok);
		assert_true(v == (c[i].ok ? c[i].want : 12345));
	}
	assert_false(kt_parse_uint(NULL, 0, 10, &v));
}

static void test_init_free(void **state)
{
	struct kt_config cfg;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	kt_config_free(&cfg);       /* zeroed */
	kt_config_free(NULL);
	kt_config_init(&cfg);
	assert_string_equal(cfg.cache_dir, KT_DEFAULT_CACHE_DIR);
	assert_string_equal(cfg.prompt, KT_DEFAULT_PROMPT);
	kt_config_free(&cfg);       /* initialised, never parsed */
	kt_config_free(&cfg);       /* twice */
	assert_null(cfg.prompt);
}

/* ---- kt_config_load on real files ---- */

struct tmp {
	char dir[64];
	char path[128];
};

static int setup_tmp(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -1;
	snprintf(t->dir, sizeof(t->dir), "/tmp/kt-config-XXXXXX");
	if (mkdtemp(t->dir) == NULL)
		return -1;
	snprintf(t->path, sizeof(t->path), "%s/pam_k8stoken.conf", t->dir);
	*state = t;
	return 0;
}

static int teardown_tmp(void **state)
{
	struct tmp *t = *state;
	char p[160];

	unlink(t->path);
	snprintf(p, sizeof(p), "%s/link.conf", t->dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/fifo", t->dir);
	unlink(p);
	rmdir(t->dir);
	free(t);
	return 0;
}

static void write_file(const char *path, const char *text, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static enum kt_reason load(const char *path, uid_t owner, char *err, size_t errlen)
{
	struct kt_config cfg;
	enum kt_reason r;

	kt_config_init(&cfg);
	r = kt_config_load(&cfg, path, owner, err, errlen);
	if (r == KT_R_OK) {
		assert_string_equal(cfg.path, path);
		assert_string_equal(cfg.servers[0], "https://k8s.example:6443");
	}
	kt_config_free(&cfg);
	return r;
}

static void test_load_ok(void **state)
{
	struct tmp *t = *state;
	char err[512];

	write_file(t->path, BASE, strlen(BASE), 0644);
	assert_int_equal(load(t->path, geteuid(), err, sizeof(err)), KT_R_OK);
	assert_string_equal(err, "");
	write_file(t->path, BASE, strlen(BASE), 0600);
	assert_int_equal(load(t->path, geteuid(), err, sizeof(err)), KT_R_OK);
	write_file(t->path, BASE, strlen(BASE), 0400);
	assert_int_equal(load(t->path, geteuid(), err, sizeof(err)), KT_R_OK);
}

static void test_load_parse_error_names_path(void **state)
{
	struct tmp *t = *state;
	char err[512], want[512];
	static const char text[] = BASE "\ntimeout = abc\n";

	write_file(t->path, text, strlen(text), 0644);
	assert_int_equal(load(t->path, geteuid(), err, sizeof(err)), KT_R_CONFIG);
	snprintf(want, sizeof(want), "%s:6: timeout: \"abc\" is not a number between 1 and 60",
		 t->path);
	assert_string_equal(err, want);
}

static void test_load_writable(void **state)
{
	struct tmp *t = *state;
	char err[512], want[512];
	static const mode_t modes[] = { 0664, 0646, 0666, 0620, 0602, 0777 };

	snprintf(want, sizeof(want), "%s is writable by group or others", t->path);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		write_file(t->path, BASE, strlen(BASE), modes[i]);
		assert_int_equal(load(t->path, geteuid(), err, sizeof(err)), KT_R_CONFIG);
		assert_string_equal(err, want);
	}
}

static void test_load_wrong_owner(void **state)
{
	struct tmp *t = *state;
	char err[512], want[512];

	write_file(t->path, BASE, strlen(BASE), 0644);
	/* the expected owner differs from the file's: works as any user */
	snprintf(want, sizeof(want), "%s is owned by uid %lu, expected 4242", t->path,
		 (unsigned long)geteuid());
	assert_int_equal(load(t->path, 4242, err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, want);
	if (geteuid() != 0)
		skip();   /* counted as a skip (a failure under CI=true), never a silent pass */
	/* as root: a file handed to nobody is refused for owner 0 */
	assert_int_equal(chown(t->path, 65534, 65534), 0);
	snprintf(want, sizeof(want), "%s is owned by uid 65534, expected 0", t->path);
	assert_int_equal(load(t->path, 0, err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, want);
	assert_int_equal(chown(t->path, 0, 0), 0);
	assert_int_equal(load(t->path, 0, err, sizeof(err)), KT_R_OK);
}

static void test_load_symlink(void **state)
{
	struct tmp *t = *state;
	char link[160], err[512], want[512];

	write_file(t->path, BASE, strlen(BASE), 0644);
	snprintf(link, sizeof(link), "%s/link.conf", t->dir);
	assert_int_equal(symlink(t->path, link), 0);
	snprintf(want, sizeof(want), "%s is a symbolic link", link);
	assert_int_equal(load(link, geteuid(), err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, want);
	/* dangling symlink too */
	unlink(t->path);
	assert_int_equal(load(link, geteuid(), err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, want);
}

static void test_load_missing(void **state)
{
	struct tmp *t = *state;
	char err[512], want[512];

	unlink(t->path);
	snprintf(want, sizeof(want), "%s does not exist", t->path);
	assert_int_equal(load(t->path, geteuid(), err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, want);
	assert_int_equal(load("", geteuid(), err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, "no configuration file given");
	assert_int_equal(load(NULL, geteuid(), err, sizeof(err)), KT_R_CONFIG);
}

static void test_load_not_regular(void **state)
{
	struct tmp *t = *state;
	char fifo[160], err[512], want[512];

	snprintf(want, sizeof(want), "%s is not a regular file", t->dir);
	assert_int_equal(load(t->dir, geteuid(), err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, want);
	/* a FIFO must not block the open */
	snprintf(fifo, sizeof(fifo), "%s/fifo", t->dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	snprintf(want, sizeof(want), "%s is not a regular file", fifo);
	assert_int_equal(load(fifo, geteuid(), err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, want);
	assert_int_equal(load("/dev/null", 0, err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, "/dev/null is not a regular file");
}

static void test_load_size(void **state)
{
	struct tmp *t = *state;
	size_t base = strlen(BASE);
	char *text = malloc(KT_CONF_MAX_SIZE + 2);
	char err[512], want[512];

	assert_non_null(text);
	/* exactly KT_CONF_MAX_SIZE: BASE, then comment lines, the last one shortened */
	memcpy(text, BASE, base);
	for (size_t o = base; o < KT_CONF_MAX_SIZE; o += 100) {
		size_t n = KT_CONF_MAX_SIZE - o < 100 ? KT_CONF_MAX_SIZE - o : 100;

		memset(text + o, '#', n);
		text[o + n - 1] = '\n';
	}
	write_file(t->path, text, KT_CONF_MAX_SIZE, 0644);
	assert_int_equal(load(t->path, geteuid(), err, sizeof(err)), KT_R_OK);
	/* one byte more */
	text[KT_CONF_MAX_SIZE] = '\n';
	write_file(t->path, text, KT_CONF_MAX_SIZE + 1, 0644);
	snprintf(want, sizeof(want), "%s is larger than 65536 bytes", t->path);
	assert_int_equal(load(t->path, geteuid(), err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, want);
	free(text);
}

/*
 * load() run by a child that has dropped to uid/gid 65534, the owner it is asked to
 * expect being the child's own; the result and message come back through a pipe.
 */
static enum kt_reason load_as_nobody(const char *path, char *err, size_t errlen)
{
	struct { enum kt_reason r; char err[512]; } out = { KT_R__COUNT, "" };
	int fds[2], status = -1;
	pid_t pid;

	assert_true(errlen >= sizeof(out.err));
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		if (setgroups(0, NULL) == 0 && setresgid(65534, 65534, 65534) == 0 &&
		    setresuid(65534, 65534, 65534) == 0)
			out.r = load(path, 65534, out.err, sizeof(out.err));
		_exit(write(fds[1], &out, sizeof(out)) == (ssize_t)sizeof(out) ? 0 : 1);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &out, sizeof(out)), (ssize_t)sizeof(out));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	snprintf(err, errlen, "%s", out.err);
	return out.r;
}

static void test_load_cannot_open(void **state)
{
	struct tmp *t = *state;
	char path[192], err[512], want[512];

	/* a file used as a directory: the generic open error names path and cause */
	write_file(t->path, BASE, strlen(BASE), 0644);
	snprintf(path, sizeof(path), "%s/x", t->path);
	snprintf(want, sizeof(want), "%s cannot be opened: Not a directory", path);
	assert_int_equal(load(path, geteuid(), err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, want);
	write_file(t->path, BASE, strlen(BASE), 0000);
	snprintf(want, sizeof(want), "%s cannot be opened: Permission denied", t->path);
	if (geteuid() != 0) {
		assert_int_equal(load(t->path, geteuid(), err, sizeof(err)), KT_R_CONFIG);
		assert_string_equal(err, want);
		return;
	}
	/* root reads mode 0000 files: the refusal is checked in a child that is nobody */
	assert_int_equal(chmod(t->dir, 0711), 0);
	assert_int_equal(load_as_nobody(t->path, err, sizeof(err)), KT_R_CONFIG);
	assert_string_equal(err, want);
}

/* ---- module arguments (docs/security.md D13) ---- */

struct args_case {
	const char *argv[4];
	int argc;
	const char *msg;    /* NULL: accepted */
	const char *conf;   /* expected conf_path when accepted */
};

static const struct args_case args_cases[] = {
	{ { NULL }, 0, NULL, KT_DEFAULT_CONF },
	{ { "conf=/etc/security/k8s-sudo.conf" }, 1, NULL, "/etc/security/k8s-sudo.conf" },
	{ { "debug", "use_first_pass" }, 2, NULL, KT_DEFAULT_CONF },
	{ { "try_first_pass", "debug", "debug" }, 3, NULL, KT_DEFAULT_CONF },
	{ { "helper=/opt/k8stoken-review", "conf=/c" }, 2, NULL, "/c" },
	{ { "use_first_pass", "try_first_pass" }, 2,
	  "module arguments use_first_pass and try_first_pass are mutually exclusive", NULL },
	{ { "conf=/a", "conf=/b" }, 2, "module argument conf= is given twice", NULL },
	{ { "helper=/a", "helper=/b" }, 2, "module argument helper= is given twice", NULL },
	{ { "conf=relative.conf" }, 1,
	  "module argument \"conf=relative.conf\": path is not an absolute path", NULL },
	{ { "conf=" }, 1, "module argument \"conf=\": path is not an absolute path", NULL },
	{ { "helper=bin/helper" }, 1,
	  "module argument \"helper=bin/helper\": path is not an absolute path", NULL },
	{ { "conf=/a b" }, 1,
	  "module argument \"conf=/a b\": path contains whitespace or a control character", NULL },
	{ { "audit" }, 1, "unknown module argument \"audit\"", NULL },
	{ { "debug", "Debug" }, 2, "unknown module argument \"Debug\"", NULL },
	{ { "conf" }, 1, "unknown module argument \"conf\"", NULL },
	{ { "conf =/x" }, 1, "unknown module argument \"conf =/x\"", NULL },
	{ { "" }, 1, "unknown module argument \"\"", NULL },
	{ { "debug=1" }, 1, "unknown module argument \"debug=1\"", NULL },
	{ { "nullok\x1b[0m" }, 1, "unknown module argument \"nullok\\x1b[0m\"", NULL },
	{ { "debug", NULL }, 2, "module argument 2 is missing", NULL },
};

static void test_args(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(args_cases) / sizeof(args_cases[0]); i++) {
		const struct args_case *c = &args_cases[i];
		struct kt_config cfg;
		const char *conf = "unset";
		char err[256];
		enum kt_reason r;

		kt_config_init(&cfg);
		r = kt_config_parse_args(&cfg, c->argc, (const char **)c->argv, &conf, err,
					 sizeof(err));
		if (r != (c->msg == NULL ? KT_R_OK : KT_R_CONFIG) ||
		    (c->msg != NULL && strcmp(err, c->msg) != 0))
			print_error("args case %zu: got \"%s\"\n", i, r == KT_R_OK ? "ok" : err);
		if (c->msg == NULL) {
			assert_int_equal(r, KT_R_OK);
			assert_string_equal(conf, c->conf);
		} else {
			assert_int_equal(r, KT_R_CONFIG);
			assert_string_equal(err, c->msg);
		}
		kt_config_free(&cfg);
	}
}

static void test_args_values(void **state)
{
	const char *argv[] = { "helper=/usr/libexec/x", "debug", "try_first_pass", "conf=/c" };
	struct kt_config cfg;
	const char *conf = NULL;
	char err[256];

	(void)state;
	kt_config_init(&cfg);
	assert_int_equal(kt_config_parse_args(&cfg, 4, argv, &conf, err, sizeof(err)), KT_R_OK);
	assert_string_equal(cfg.helper, "/usr/libexec/x");
	assert_ptr_not_equal(cfg.helper, argv[0] + 7);   /* owned copy */
	assert_ptr_equal(conf, argv[3] + 5);             /* not owned */
	assert_true(cfg.debug);
	assert_true(cfg.try_first_pass);
	assert_false(cfg.use_first_pass);
	/* the file does not touch argument fields */
	assert_int_equal(kt_config_parse_buffer(&cfg, "t.conf", BASE, strlen(BASE), err,
						sizeof(err)), KT_R_OK);
	assert_string_equal(cfg.helper, "/usr/libexec/x");
	assert_true(cfg.debug);
	kt_config_free(&cfg);
	/* NULL conf_path is allowed */
	kt_config_init(&cfg);
	assert_int_equal(kt_config_parse_args(&cfg, 1, argv + 1, NULL, NULL, 0), KT_R_OK);
	kt_config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_cases),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_values_stored),
		cmocka_unit_test(test_file_cases),
		cmocka_unit_test(test_connect_timeout_follows_timeout),
		cmocka_unit_test(test_server_limit),
		cmocka_unit_test(test_audience_limit),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_message_escaping_and_truncation),
		cmocka_unit_test(test_parse_uint),
		cmocka_unit_test(test_init_free),
		cmocka_unit_test_setup_teardown(test_load_ok, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_load_parse_error_names_path, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_load_writable, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_load_wrong_owner, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_load_symlink, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_load_missing, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_load_not_regular, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_load_size, setup_tmp, teardown_tmp),
		cmocka_unit_test_setup_teardown(test_load_cannot_open, setup_tmp, teardown_tmp),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_args_values),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
