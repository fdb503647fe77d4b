/*
 * Single configuration values (config_values.c, docs/design.md §3.1) and the log escaper
 * (secure.c kt_escape, §8.1) on arbitrary text. Invariants:
 *   - kt_escape: the output is printable ASCII, NUL-terminated within outlen, never longer
 *     than outlen - 1; when it was not cut (no "..." ending) un-escaping it gives the input
 *     back exactly; when it was cut, the part before "..." un-escapes to a prefix of it;
 *   - an accepted path is absolute, shorter than PATH_MAX, without whitespace or controls;
 *   - an accepted server is https://, without '@', '?', '#', whitespace, controls or
 *     non-ASCII, with a host, and a port (when given) in 1..65535;
 *   - kt_printable_utf8 agrees with an independent decoder (glibc's mbrtowc in C.UTF-8 plus
 *     the C0/C1 and DEL exclusions).
 */
#include <limits.h>
#include <locale.h>
#include <string.h>
#include <wchar.h>

#include "config_values.h"
#include "fuzz.h"
#include "secure.h"

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Un-escapes out[0..n) (asserting its form) and compares it with in: the number of input
 * bytes it reproduces, or (size_t)-1 when it differs from the input. */
static size_t unescape_matches(const char *out, size_t n, const char *in, size_t inlen)
{
	size_t i = 0, o = 0;

	while (o < n) {
		unsigned char c;

		if (out[o] == '\\') {
			FUZZ_ASSERT(o + 1 < n);
			if (out[o + 1] == 'x') {
				FUZZ_ASSERT(o + 3 < n && hexval(out[o + 2]) >= 0 && hexval(out[o + 3]) >= 0);
				c = (unsigned char)(hexval(out[o + 2]) << 4 | hexval(out[o + 3]));
				FUZZ_ASSERT(c < 0x20 || c > 0x7e);
				o += 4;
			} else {
				FUZZ_ASSERT(out[o + 1] == '"' || out[o + 1] == '\\');
				c = (unsigned char)out[o + 1];
				o += 2;
			}
		} else {
			FUZZ_ASSERT(out[o] != '"');
			c = (unsigned char)out[o++];
		}
		if (i >= inlen || (unsigned char)in[i] != c)
			return (size_t)-1;
		i++;
	}
	return i;
}

static void check_escape(const char *in, size_t inlen, size_t outlen)
{
	char *out = malloc(outlen + 1);
	size_t n;

	FUZZ_ASSERT(out != NULL);
	out[outlen] = 'Z';   /* a canary right past the buffer the escaper was given */
	kt_escape(in, inlen, out, outlen);
	FUZZ_ASSERT(out[outlen] == 'Z');
	n = strnlen(out, outlen);
	FUZZ_ASSERT(n < outlen);
	FUZZ_ASSERT(fuzz_printable(out, n));
	if (outlen < 4) {
		FUZZ_ASSERT(n == 0);
	} else if (unescape_matches(out, n, in, inlen) != inlen) {
		/* cut: "..." after an escaped strict prefix of the input */
		size_t kept;

		FUZZ_ASSERT(n >= 3 && memcmp(out + n - 3, "...", 3) == 0);
		kept = unescape_matches(out, n - 3, in, inlen);
		FUZZ_ASSERT(kept != (size_t)-1 && kept < inlen);
	}
	free(out);
}

static void check_path(const char *s)
{
	if (kt_check_path(s) != NULL)
		return;
	FUZZ_ASSERT(s[0] == '/' && strlen(s) < PATH_MAX);
	for (const char *p = s; *p != '\0'; p++)
		FUZZ_ASSERT((unsigned char)*p > 0x20 && (unsigned char)*p != 0x7f);
}

static void check_server(const char *s)
{
	const char *host, *end, *colon;

	if (kt_check_server(s) != NULL)
		return;
	FUZZ_ASSERT(strncmp(s, "https://", 8) == 0 && strpbrk(s, "@?#") == NULL);
	for (const char *p = s; *p != '\0'; p++)
		FUZZ_ASSERT((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f);
	host = s + 8;
	end = strchr(host, '/');
	if (end == NULL)
		end = host + strlen(host);
	FUZZ_ASSERT(end > host);
	colon = host[0] == '[' ? strstr(host, "]:") : memchr(host, ':', (size_t)(end - host));
	if (colon != NULL && colon < end) {
		long port;

		colon += host[0] == '[' ? 2 : 1;
		port = strtol(colon, NULL, 10);
		FUZZ_ASSERT(colon < end && port >= 1 && port <= 65535);
	}
}

static int independent_printable_utf8(const char *s)
{
	mbstate_t st;
	size_t left = strlen(s);

	memset(&st, 0, sizeof(st));
	while (left > 0) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s, left, &st);

		if (n == (size_t)-1 || n == (size_t)-2 || n == 0)
			return 0;
		if (wc < 0x20 || (wc >= 0x7f && wc <= 0x9f) || (wc >= 0xd800 && wc <= 0xdfff) ||
		    wc > 0x10ffff)
			return 0;
		s += n;
		left -= n;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int locale_set;
	char *s;

	if (!locale_set) {
		FUZZ_ASSERT(setlocale(LC_CTYPE, "C.UTF-8") != NULL);
		locale_set = 1;
	}
	if (size < 1)
		return 0;
	check_escape((const char *)data + 1, size - 1, (size_t)data[0] + 1);
	check_escape((const char *)data + 1, size - 1, 201);
	s = fuzz_cstr(data + 1, size - 1);
	check_path(s);
	check_server(s);
	FUZZ_ASSERT(kt_printable_utf8(s) == independent_printable_utf8(s));
	free(s);
	return 0;
}
