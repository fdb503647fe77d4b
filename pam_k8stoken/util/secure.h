/* Handling of secret-bearing memory and of untrusted text that reaches a log. */
#ifndef KT_SECURE_H
#define KT_SECURE_H

#include <stdarg.h>
#include <stddef.h>

/* Zeroes len bytes at p (not optimised away) and frees p. NULL is fine. */
void kt_free_secret(void *p, size_t len);
/* Same for a NUL-terminated string. */
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
