/*
 * The one reader of unsigned numbers in text: configuration values, the helper's record,
 * cache, breaker and key-set files, prompts and command lines.
 */
#ifndef KT_NUMBER_H
#define KT_NUMBER_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Strict decimal: s[0..len) (no NUL needed) is 1 to 20 digits (no sign, no space; leading
 * zeros are allowed, as every format read so far allowed them) with a value in [min, max].
 * Returns true and sets *out; otherwise false with *out untouched. 20 digits hold
 * ULLONG_MAX; the value is checked for overflow digit by digit.
 */
bool kt_parse_uint_n(const char *s, size_t len, unsigned long long min, unsigned long long max,
                     unsigned long long *out);
/* kt_parse_uint_n of the whole NUL-terminated s; NULL is refused. */
bool kt_parse_uint(const char *s, unsigned long long min, unsigned long long max,
                   unsigned long long *out);
/* The same rules for 1 to 16 hexadecimal digits (either case). */
bool kt_parse_hex_n(const char *s, size_t len, unsigned long long min, unsigned long long max,
                    unsigned long long *out);

/*
 * Takes the line "KEY N\n" at *p (text ends at end), N by kt_parse_uint_n in [min, max], and
 * moves *p past it. False, *p unchanged, for anything else.
 */
bool kt_take_uint_line(const char **p, const char *end, const char *key, unsigned long long min,
                       unsigned long long max, unsigned long long *out);

#endif
