#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "io.h"
#include "secure.h"

int kt_secret_alloc(struct kt_secret *s, size_t cap)
{
	*s = (struct kt_secret){ .p = malloc(cap > 0 ? cap : 1) };
	if (s->p == NULL)
		return -1;
	s->cap = cap > 0 ? cap : 1;
	s->p[0] = '\0';
	return 0;
}

int kt_secret_dup(struct kt_secret *s, const void *data, size_t n)
{
	if (kt_secret_alloc(s, n + 1) < 0)
		return -1;
	return kt_secret_append(s, data, n);
}

int kt_secret_append(struct kt_secret *s, const void *data, size_t n)
{
	if (s->p == NULL || n >= s->cap - s->len)
		return -1;
	memcpy(s->p + s->len, data, n);
	s->len += n;
	s->p[s->len] = '\0';
	return 0;
}

ssize_t kt_secret_read(struct kt_secret *s, int fd)
{
	ssize_t n;

	if (s->p == NULL)
		return -1;
	n = kt_read_all(fd, s->p + s->len, s->cap - 1 - s->len);
	if (n > 0)
		s->len += (size_t)n;
	s->p[s->len] = '\0';
	return n;
}

void kt_secret_reset(struct kt_secret *s)
{
	if (s->p == NULL)
		return;
	explicit_bzero(s->p, s->cap);   /* all of it: a failed read may have left bytes past len */
	s->len = 0;
}

struct kt_secret kt_secret_take(struct kt_secret *s)
{
	struct kt_secret taken = *s;

	*s = (struct kt_secret){ 0 };
	return taken;
}

void kt_secret_free(struct kt_secret *s)
{
	if (s->p != NULL) {
		explicit_bzero(s->p, s->cap);
		free(s->p);
	}
	*s = (struct kt_secret){ 0 };
}

void kt_free_secret_str(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void kt_escape(const char *in, size_t inlen, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (outlen < 4) {
		if (outlen > 0)
			out[0] = '\0';
		return;
	}
	for (size_t i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];
		char piece[4];
		size_t n;

		if (c == '"' || c == '\\') {
			piece[0] = '\\';
			piece[1] = (char)c;
			n = 2;
		} else if (c < 0x20 || c > 0x7e) {
			piece[0] = '\\';
			piece[1] = 'x';
			piece[2] = hex[c >> 4];
			piece[3] = hex[c & 0xf];
			n = 4;
		} else {
			piece[0] = (char)c;
			n = 1;
		}
		/* keep room for "..." and the NUL */
		if (o + n + 4 > outlen) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(out + o, piece, n);
		o += n;
	}
	out[o] = '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;   /* kt_escape writes lower case */
}

int kt_unescape(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	for (const char *p = in; *p != '\0'; p++) {
		int c = (unsigned char)*p;

		if (c < 0x20 || c > 0x7e || c == '"' || o + 1 >= outlen)
			goto bad;
		if (c == '\\') {
			p++;
			if (*p == '\\' || *p == '"') {
				c = *p;
			} else if (*p == 'x' && hex_digit(p[1]) >= 0 && hex_digit(p[2]) >= 0 &&
			           (p[1] != '0' || p[2] != '0')) {   /* no NUL inside the text */
				c = hex_digit(p[1]) << 4 | hex_digit(p[2]);
				p += 2;
			} else {
				goto bad;
			}
		}
		out[o++] = (char)c;
	}
	if (outlen > 0)
		out[o] = '\0';
	return outlen > 0 ? 0 : -1;
bad:
	if (outlen > 0)
		out[0] = '\0';
	return -1;
}

void kt_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * n] = '\0';
}

void kt_vescapef(char *out, size_t outlen, const char *fmt, va_list ap)
{
	char raw[256];

	vsnprintf(raw, sizeof(raw), fmt, ap);
	kt_escape(raw, strlen(raw), out, outlen);
}

void kt_escapef(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kt_vescapef(out, outlen, fmt, ap);
	va_end(ap);
}
