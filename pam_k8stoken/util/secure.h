/* Handling of secret-bearing memory and of untrusted text that reaches a log. */
#ifndef KT_SECURE_H
#define KT_SECURE_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * A secret-bearing buffer that knows its size (as OpenSSH's sshbuf does): p holds len bytes
 * of text, NUL-terminated, in cap bytes of plain heap memory. Whoever frees it states no
 * size: kt_secret_free zeroes all cap bytes, wherever something was written. { 0 } is an
 * empty secret, which kt_secret_free accepts.
 */
struct kt_secret {
	char *p;
	size_t len, cap;
};

/* An empty secret of cap >= 1 bytes (room for cap - 1 of text). 0, or -1 when out of memory. */
int kt_secret_alloc(struct kt_secret *s, size_t cap);
/* A secret holding a copy of data[0..n) (cap n + 1). 0, or -1 when out of memory. */
int kt_secret_dup(struct kt_secret *s, const void *data, size_t n);
/* Appends data[0..n) if it fits within cap; 0, or -1 with nothing appended. */
int kt_secret_append(struct kt_secret *s, const void *data, size_t n);
/* Reads fd until end of file or cap - 1 bytes of text, retrying on EINTR: bytes read or -1. */
ssize_t kt_secret_read(struct kt_secret *s, int fd);
/* Zeroes all cap bytes and empties it; the buffer stays, for another fill. */
void kt_secret_reset(struct kt_secret *s);
/* Hands s's buffer over to the caller (s is left empty): a transfer of ownership. */
struct kt_secret kt_secret_take(struct kt_secret *s);
/* Zeroes all cap bytes (not optimised away), frees the buffer and leaves s empty. */
void kt_secret_free(struct kt_secret *s);

/*
 * Zeroes and frees a NUL-terminated string whose capacity nobody knows: the answers of a
 * PAM conversation, which the application allocates. Only up to the NUL can be zeroed.
 */
void kt_free_secret_str(char *s);

/*
 * Copies untrusted text into out (size outlen >= 4) with every byte outside
 * printable ASCII written as \xHH and '"' and '\\' escaped; cut with "..." when it
 * does not fit. Always NUL-terminates.
 */
void kt_escape(const char *in, size_t inlen, char *out, size_t outlen);
/*
 * The inverse, for text that crossed a boundary escaped (the helper's record, a core parser's
 * escaped output): in must be printable ASCII whose only backslashes start \\, \" or \xHH,
 * and whose only quotes are escaped. Writes the text into out (size outlen); -1 (out empty)
 * when in is not such text or the text does not fit.
 */
int kt_unescape(const char *in, char *out, size_t outlen);
/* kt_escape of a printf-formatted text of at most 255 characters: a detail for a log line. */
__attribute__((format(printf, 3, 4)))
void kt_escapef(char *out, size_t outlen, const char *fmt, ...);
void kt_vescapef(char *out, size_t outlen, const char *fmt, va_list ap);

/* Lower-case hex of in[0..n) into out (2n + 1 bytes, NUL-terminated): digests in names and logs. */
void kt_hex(const unsigned char *in, size_t n, char *out);

#endif
