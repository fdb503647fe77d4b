/* Handling of secret-bearing memory and of untrusted text that reaches a log. */
#ifndef KT_SECURE_H
#define KT_SECURE_H

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

/* Lower-case hex of in[0..n) into out (2n + 1 bytes, NUL-terminated): digests in names and logs. */
void kt_hex(const unsigned char *in, size_t n, char *out);

#endif
