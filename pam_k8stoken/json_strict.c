#include <string.h>

#include "json_strict.h"

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0. json-c 0.16 accepts all three. */
static size_t utf8_len(const unsigned char *s, size_t n, size_t i)
{
	unsigned char c = s[i], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
		return 0;
	for (size_t k = 2; k < len; k++)
		if (s[i + k] < 0x80 || s[i + k] > 0xbf)
			return 0;
	return len;
}

/* What may follow a number or a literal: "00", "1true", "nullx" are not JSON. */
static bool ends_token(const unsigned char *s, size_t n, size_t i)
{
	return i >= n || s[i] == ',' || s[i] == '}' || s[i] == ']' ||
	       s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r';
}

bool kt_json_lex(const unsigned char *s, size_t n, size_t max_depth, size_t *members)
{
	size_t i = 0, depth = 0;

	*members = 0;
	while (i < n) {
		unsigned char c = s[i];

		switch (c) {
		case '"':
			i++;
			while (i < n && s[i] != '"') {
				size_t k;

				if (s[i] < 0x20)
					return false;    /* raw control character inside a string */
				if (s[i] == '\\') {
					i += 2;          /* escape validity is json-c's job */
					continue;
				}
				if ((k = utf8_len(s, n, i)) == 0)
					return false;    /* stricter than json-c's VALIDATE_UTF8 */
				i += k;
			}
			if (i >= n)
				return false;
			i++;
			break;
		case '{':
		case '[':
			if (++depth > max_depth)
				return false;
			i++;
			break;
		case '}':
		case ']':
			if (depth == 0)
				return false;
			depth--;
			i++;
			break;
		case ':':
			(*members)++;
			i++;
			break;
		case ',': case ' ': case '\t': case '\n': case '\r':
			i++;
			break;
		case 't': case 'f': case 'n': {
			static const char *const words[] = { "true", "false", "null" };
			size_t w;

			for (w = 0; w < 3; w++) {
				size_t wl = strlen(words[w]);

				if (n - i >= wl && memcmp(s + i, words[w], wl) == 0) {
					i += wl;
					break;
				}
			}
			if (w == 3 || !ends_token(s, n, i))
				return false;
			break;
		}
		default:
			/* number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
			if (c == '-' && ++i >= n)
				return false;
			if (s[i] == '0')
				i++;
			else if (s[i] >= '1' && s[i] <= '9')
				while (i < n && is_digit(s[i]))
					i++;
			else
				return false;    /* ', /, N(aN), I(nfinity), T(rue), +, ., bytes >= 0x80 ... */
			if (i < n && s[i] == '.') {
				if (++i >= n || !is_digit(s[i]))
					return false;
				while (i < n && is_digit(s[i]))
					i++;
			}
			if (i < n && (s[i] == 'e' || s[i] == 'E')) {
				if (++i < n && (s[i] == '+' || s[i] == '-'))
					i++;
				if (i >= n || !is_digit(s[i]))
					return false;
				while (i < n && is_digit(s[i]))
					i++;
			}
			if (!ends_token(s, n, i))
				return false;
			break;
		}
	}
	return depth == 0;
}
