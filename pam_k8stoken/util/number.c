#include <limits.h>
#include <string.h>

#include "number.h"

#define DEC_DIGITS_MAX 20   /* of ULLONG_MAX */
#define HEX_DIGITS_MAX 16

static int digit_value(char c, unsigned base)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (base == 16 && c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (base == 16 && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool parse(const char *s, size_t len, unsigned base, size_t max_digits,
                  unsigned long long min, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (s == NULL || len == 0 || len > max_digits)
		return false;
	for (size_t i = 0; i < len; i++) {
		int d = digit_value(s[i], base);

		if (d < 0 || v > (ULLONG_MAX - (unsigned)d) / base)
			return false;
		v = v * base + (unsigned)d;
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool kt_parse_uint_n(const char *s, size_t len, unsigned long long min, unsigned long long max,
                     unsigned long long *out)
{
	return parse(s, len, 10, DEC_DIGITS_MAX, min, max, out);
}

bool kt_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                   unsigned long long *out)
{
	/* one character past the limit is enough to refuse, however long s is */
	return s != NULL && kt_parse_uint_n(s, strnlen(s, DEC_DIGITS_MAX + 1), min, max, out);
}

bool kt_parse_hex_n(const char *s, size_t len, unsigned long long min, unsigned long long max,
                    unsigned long long *out)
{
	return parse(s, len, 16, HEX_DIGITS_MAX, min, max, out);
}

bool kt_take_uint_line(const char **p, const char *end, const char *key, unsigned long long min,
                       unsigned long long max, unsigned long long *out)
{
	size_t klen = strlen(key);
	const char *v, *nl;

	if ((size_t)(end - *p) < klen + 2 || memcmp(*p, key, klen) != 0 || (*p)[klen] != ' ')
		return false;
	v = *p + klen + 1;
	nl = memchr(v, '\n', (size_t)(end - v));
	if (nl == NULL || !kt_parse_uint_n(v, (size_t)(nl - v), min, max, out))
		return false;
	*p = nl + 1;
	return true;
}
