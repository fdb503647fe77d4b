#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "helper_proto.h"
#include "number.h"
#include "review.h"
#include "secure.h"

#define MAGIC "kt-review/1\n"

size_t kt_proto_format_header(const struct kt_helper_result *r, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, MAGIC "reason %s\nhttp %ld\nserver %u\ndetail %s\nbody %zu\n",
	                 kt_reason_name(r->reason), r->http_status, r->server_index,
	                 r->detail, r->body.len);
	if (n < 0 || (size_t)n >= outlen)
		return 0;
	return (size_t)n;
}

/* Takes "KEY VALUE\n" at *pos; *value points into buf, NUL-free, without the newline. */
static int take_line(const char *buf, size_t len, size_t *pos, const char *key,
                     const char **value, size_t *vlen)
{
	size_t klen = strlen(key);
	const char *start = buf + *pos;
	size_t left = len - *pos;
	const char *nl = memchr(start, '\n', left);

	if (nl == NULL || (size_t)(nl - start) < klen + 1 || memcmp(start, key, klen) != 0 ||
	    start[klen] != ' ')
		return -1;
	*value = start + klen + 1;
	*vlen = (size_t)(nl - *value);
	if (memchr(*value, '\0', *vlen) != NULL)
		return -1;
	*pos += (size_t)(nl - start) + 1;
	return 0;
}

enum kt_reason kt_proto_parse(const char *buf, size_t len, struct kt_helper_result *r)
{
	const char *v;
	size_t vlen, pos = sizeof(MAGIC) - 1;
	unsigned long long num;
	char name[32], text[KT_PROTO_DETAIL_MAX];

	memset(r, 0, sizeof(*r));
	r->reason = KT_R_HELPER;
	if (len < pos || memcmp(buf, MAGIC, pos) != 0)
		return KT_R_HELPER;

	if (take_line(buf, len, &pos, "reason", &v, &vlen) < 0 || vlen >= sizeof(name))
		return KT_R_HELPER;
	memcpy(name, v, vlen);
	name[vlen] = '\0';
	enum kt_reason reason = kt_reason_from_name(name);
	if (reason == KT_R__COUNT)
		return KT_R_HELPER;

	if (take_line(buf, len, &pos, "http", &v, &vlen) < 0 ||
	    !kt_parse_uint_n(v, vlen, 0, 999, &num))
		return KT_R_HELPER;
	r->http_status = (long)num;
	if (take_line(buf, len, &pos, "server", &v, &vlen) < 0 ||
	    !kt_parse_uint_n(v, vlen, 0, 64, &num))
		return KT_R_HELPER;
	r->server_index = (unsigned)num;
	if (take_line(buf, len, &pos, "detail", &v, &vlen) < 0 || vlen >= sizeof(r->detail))
		return KT_R_HELPER;
	memcpy(r->detail, v, vlen);
	r->detail[vlen] = '\0';
	/* kt_escape'd text, nothing else (no byte outside printable ASCII, no stray '"' or '\\') */
	if (kt_unescape(r->detail, text, sizeof(text)) < 0)
		return KT_R_HELPER;
	if (take_line(buf, len, &pos, "body", &v, &vlen) < 0 ||
	    !kt_parse_uint_n(v, vlen, 0, KT_REPLY_MAX, &num))
		return KT_R_HELPER;
	/* a body is the reviewed identity: with ok, or a login the access review stopped */
	if (num > 0 && !kt_access_reason_has_identity(reason))
		return KT_R_HELPER;
	if (len - pos != num + 4 || memcmp(buf + pos + num, "end\n", 4) != 0)
		return KT_R_HELPER;

	if (kt_secret_dup(&r->body, buf + pos, num) < 0)
		return KT_R_HELPER;   /* the caller cannot tell; an unreadable answer is a denial either way */
	r->reason = reason;
	return KT_R_OK;
}

void kt_helper_result_free(struct kt_helper_result *r)
{
	kt_secret_free(&r->body);
}
