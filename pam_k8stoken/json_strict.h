/*
 * A lexical pass that runs before json-c sees any untrusted JSON. json-c 0.16, even in
 * STRICT mode, takes NaN, Infinity, "1.", single quotes, raw control characters in
 * strings, overlong UTF-8 and surrogates; the API server's Go decoder takes none of
 * them, and neither do we. Structure is left to json-c.
 */
#ifndef KT_JSON_STRICT_H
#define KT_JSON_STRICT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * True when s[0..n) holds only RFC 8259 tokens (RFC 3629 UTF-8 in strings), with
 * brackets balanced and nested at most max_depth deep. *members counts the ':'
 * outside strings, so a caller can tell whether json-c dropped duplicate keys.
 */
bool kt_json_lex(const unsigned char *s, size_t n, size_t max_depth, size_t *members);

#endif
