/* Checks of single configuration values: paths, server URLs, printable text. */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "config_values.h"
#include "number.h"

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

const char *kt_check_path(const char *v)
{
	if (v[0] != '/')
		return "is not an absolute path";
	if (strlen(v) >= PATH_MAX)
		return "is too long";
	for (const char *s = v; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c == 0x7f)
			return "contains whitespace or a control character";
	}
	return NULL;
}

/* 1 to 65535 in at most 5 digits (a zero-padded "08080" is still a port) */
static const char *check_port(const char *s, size_t len)
{
	unsigned long long v;

	return len <= 5 && kt_parse_uint_n(s, len, 1, 65535, &v) ? NULL : "has an invalid port";
}

/* host, [v6], host:port or [v6]:port; the authority has no '@' by now. */
static const char *check_authority(const char *a, size_t len)
{
	size_t hlen;

	if (len == 0)
		return "has no host";
	if (a[0] == '[') {
		const char *close = memchr(a, ']', len);
		bool colon = false;

		if (close == NULL)
			return "has an invalid IPv6 address";
		hlen = (size_t)(close - a) + 1;
		for (size_t i = 1; i + 1 < hlen; i++) {
			if (a[i] == ':')
				colon = true;
			else if (!is_hex(a[i]) && a[i] != '.')
				return "has an invalid IPv6 address";
		}
		if (!colon)
			return "has an invalid IPv6 address";
	} else {
		const char *colon = memchr(a, ':', len);

		hlen = colon != NULL ? (size_t)(colon - a) : len;
		if (hlen == 0)
			return "has no host";
		if (hlen > 253 || a[0] == '-' || a[0] == '.')
			return "has an invalid host name";
		for (size_t i = 0; i < hlen; i++)
			if (!is_alnum(a[i]) && a[i] != '-' && a[i] != '.')
				return "has an invalid host name";
	}
	if (hlen == len)
		return NULL;
	if (a[hlen] != ':')
		return "has an invalid host";
	return check_port(a + hlen + 1, len - hlen - 1);
}

const char *kt_check_server(const char *v)
{
	static const char path_chars[] = "-._~/:+,;=!$&'()*";
	const char *auth, *slash;

	for (const char *s = v; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f)
			return "contains whitespace, a control or a non-ASCII character";
	}
	if (strncmp(v, "https://", 8) != 0)
		return "is not an https:// URL";
	if (strchr(v, '@') != NULL)
		return "must not contain user information ('@')";
	if (strpbrk(v, "?#") != NULL)
		return "must not contain a query or a fragment";
	auth = v + 8;
	slash = strchr(auth, '/');
	{
		const char *why = check_authority(auth, slash != NULL ? (size_t)(slash - auth)
								   : strlen(auth));
		if (why != NULL)
			return why;
	}
	for (const char *s = slash; s != NULL && *s != '\0'; s++) {
		if (*s == '%') {
			if (!is_hex(s[1]) || !is_hex(s[2]))
				return "has an invalid percent escape in its path";
			s += 2;
		} else if (!is_alnum(*s) && strchr(path_chars, *s) == NULL) {
			return "has an invalid character in its path";
		}
	}
	return NULL;
}

bool kt_printable_utf8(const char *v)
{
	const unsigned char *s = (const unsigned char *)v;

	while (*s != '\0') {
		unsigned cp;
		int more;

		if (*s < 0x80) {
			if (*s < 0x20 || *s == 0x7f)
				return false;
			s++;
			continue;
		}
		if (*s >= 0xc2 && *s <= 0xdf) {
			cp = *s & 0x1fU;
			more = 1;
		} else if (*s >= 0xe0 && *s <= 0xef) {
			cp = *s & 0x0fU;
			more = 2;
		} else if (*s >= 0xf0 && *s <= 0xf4) {
			cp = *s & 0x07U;
			more = 3;
		} else {
			return false;
		}
		s++;
		for (int i = 0; i < more; i++, s++) {
			if ((*s & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (*s & 0x3fU);
		}
		/* overlong, surrogates, beyond U+10FFFF, C1 controls */
		if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
		    (cp >= 0x80 && cp <= 0x9f))
			return false;
	}
	return true;
}
