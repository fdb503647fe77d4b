#include <limits.h>
#include <stdint.h>
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

/* Members json-c kept, over the whole tree (depth already bounded by the lexer). */
static size_t count_members(json_object *o)
{
	size_t total = 0;

	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val) {
			(void)key;
			total += 1 + count_members(val);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		size_t n = json_object_array_length(o);

		for (size_t i = 0; i < n; i++)
			total += count_members(json_object_array_get_idx(o, i));
	}
	return total;
}

static bool is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

enum kt_reason kt_json_parse_object(const char *s, size_t n, size_t max_depth,
                                    json_object **root)
{
	struct json_tokener *tok;
	enum kt_reason r = KT_R_MALFORMED_REPLY;
	size_t members, end;

	*root = NULL;
	if (s == NULL || n == 0 || n > INT_MAX || memchr(s, '\0', n) != NULL ||
	    !kt_json_lex((const unsigned char *)s, n, max_depth, &members))
		return KT_R_MALFORMED_REPLY;
	tok = json_tokener_new_ex((int)max_depth);
	if (tok == NULL)
		return KT_R_NOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	*root = json_tokener_parse_ex(tok, s, (int)n);
	if (*root == NULL || json_tokener_get_error(tok) != json_tokener_success)
		goto out;
	end = json_tokener_get_parse_end(tok);
	if (end > n)
		goto out;
	for (; end < n; end++)   /* the API server ends its JSON with "\n" */
		if (!is_json_space(s[end]))
			goto out;
	if (json_object_is_type(*root, json_type_object) && count_members(*root) == members)
		r = KT_R_OK;   /* else: not an object, or json-c dropped a duplicate key */
out:
	json_tokener_free(tok);
	if (r != KT_R_OK) {
		json_object_put(*root);
		*root = NULL;
	}
	return r;
}

json_object *kt_json_member(json_object *obj, const char *key)
{
	json_object *v = NULL;

	if (obj == NULL || !json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v;
}

bool kt_json_has(json_object *obj, const char *key)
{
	return obj != NULL && json_object_object_get_ex(obj, key, NULL) != 0;
}

const char *kt_json_string(json_object *v, size_t *len)
{
	const char *s;
	size_t n;

	if (v == NULL || !json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	if (s == NULL)
		return NULL;
	n = (size_t)json_object_get_string_len(v);
	if (strlen(s) != n)
		return NULL;
	if (len != NULL)
		*len = n;
	return s;
}

bool kt_json_string_array(json_object *v)
{
	size_t n;

	if (v == NULL || !json_object_is_type(v, json_type_array))
		return false;
	n = json_object_array_length(v);
	for (size_t i = 0; i < n; i++)
		if (kt_json_string(json_object_array_get_idx(v, i), NULL) == NULL)
			return false;
	return true;
}

void kt_json_scrub_string(json_object *s)
{
	if (s != NULL && json_object_is_type(s, json_type_string)) {
		char *p = (char *)(uintptr_t)json_object_get_string(s);
		int n = json_object_get_string_len(s);

		if (p != NULL && n > 0)
			explicit_bzero(p, (size_t)n);
	}
}

void kt_json_scrub_echoed_token(json_object *reply)
{
	kt_json_scrub_string(kt_json_member(kt_json_member(reply, "spec"), "token"));
}

enum kt_reason kt_json_serialise_secret(json_object *root, struct kt_secret *out)
{
	size_t n = 0;
	const char *text = json_object_to_json_string_length(root,
	                       JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	enum kt_reason r;

	*out = (struct kt_secret){ 0 };
	if (text == NULL)
		return KT_R_NOMEM;
	r = kt_secret_dup(out, text, n) == 0 ? KT_R_OK : KT_R_NOMEM;
	explicit_bzero((char *)(uintptr_t)text, n);
	return r;
}
