/*
 * A lexical pass that runs before json-c sees any untrusted JSON. json-c 0.16, even in
 * STRICT mode, takes NaN, Infinity, "1.", single quotes, raw control characters in
 * strings, overlong UTF-8 and surrogates; the API server's Go decoder takes none of
 * them, and neither do we. Structure is left to json-c.
 */
#ifndef KT_JSON_STRICT_H
#define KT_JSON_STRICT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "reason.h"
#include "secure.h"

/*
 * True when s[0..n) holds only RFC 8259 tokens (RFC 3629 UTF-8 in strings), with
 * brackets balanced and nested at most max_depth deep. *members counts the ':'
 * outside strings, so a caller can tell whether json-c dropped duplicate keys.
 */
bool kt_json_lex(const unsigned char *s, size_t n, size_t max_depth, size_t *members);

/*
 * Parses untrusted s[0..n) into a JSON object the one strict way: no NUL, kt_json_lex,
 * json-c STRICT with UTF-8 validation, the whole buffer (trailing JSON whitespace only),
 * and no duplicate key anywhere (json-c would keep the last one silently). KT_R_OK with
 * *root set (the caller puts it), KT_R_NOMEM, or KT_R_MALFORMED_REPLY with *root NULL.
 */
enum kt_reason kt_json_parse_object(const char *s, size_t n, size_t max_depth,
                                    json_object **root);

/* Member key of obj; NULL when obj is NULL or the member is absent or JSON null. */
json_object *kt_json_member(json_object *obj, const char *key);
/* Member key present, even as JSON null. */
bool kt_json_has(json_object *obj, const char *key);
/* v's string when v is a string without an embedded NUL (*len its length), else NULL. */
const char *kt_json_string(json_object *v, size_t *len);
/* v is an array of strings without embedded NUL. */
bool kt_json_string_array(json_object *v);

/* Best effort: zeroes json-c's copy of a string value (a token) before the tree is put. */
void kt_json_scrub_string(json_object *s);
/* The same for spec.token, which kube-apiserver echoes in its TokenReview reply. */
void kt_json_scrub_echoed_token(json_object *reply);
/*
 * A request that carries a token or an identity, serialised (plain, slashes unescaped) into
 * out; json-c's print buffer is zeroed. Its other copies (earlier print-buffer sizes left
 * behind by realloc) are released unzeroed: unavoidable with json-c's public API.
 */
enum kt_reason kt_json_serialise_secret(json_object *root, struct kt_secret *out);

#endif
