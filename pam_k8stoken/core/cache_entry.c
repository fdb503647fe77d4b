/* The text of one cache entry: formatting, parsing and its MAC (format in cache.h). */
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "number.h"
#include "secure.h"

#define MAGIC "k8stoken-cache 1\n"
#define MAC_DOMAIN "k8stoken-entry-mac"
#define MAC_HEX 64

/* hex(HMAC(key, domain 0x00 name 0x00 text[0..len))) into out (65 bytes). */
static int entry_mac(const unsigned char key[KT_CACHE_KEY_LEN], const char *name,
                     const char *text, size_t len, char out[MAC_HEX + 1])
{
	size_t dlen = sizeof(MAC_DOMAIN), nlen = strlen(name) + 1;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned char *msg = malloc(dlen + nlen + len);

	if (msg == NULL)
		return -1;
	memcpy(msg, MAC_DOMAIN, dlen);
	memcpy(msg + dlen, name, nlen);
	memcpy(msg + dlen + nlen, text, len);
	if (HMAC(EVP_sha256(), key, KT_CACHE_KEY_LEN, msg, dlen + nlen + len, md, &mdlen) == NULL ||
	    mdlen != 32) {
		free(msg);
		return -1;
	}
	free(msg);
	kt_hex(md, mdlen, out);
	return 0;
}

/* Appends "key value\n"; refuses values that could break the line structure. */
static int put(char *out, size_t *pos, const char *key, const char *value)
{
	int n;

	if (value == NULL)
		return 0;
	if (strchr(value, '\n') != NULL || value[0] == '\0')
		return -1;
	n = snprintf(out + *pos, KT_CACHE_ENTRY_MAX - *pos, "%s %s\n", key, value);
	if (n < 0 || (size_t)n >= KT_CACHE_ENTRY_MAX - *pos)
		return -1;
	*pos += (size_t)n;
	return 0;
}

size_t kt_cache_entry_format(const unsigned char key[KT_CACHE_KEY_LEN], const char *name,
                             const char *boot_id, long long expires_ms,
                             const struct kt_identity *id, char *out)
{
	char number[24], mac[MAC_HEX + 1];
	size_t pos = 0;
	int bad = 0;

	snprintf(number, sizeof(number), "%lld", expires_ms);
	memcpy(out, MAGIC, sizeof(MAGIC) - 1);
	pos = sizeof(MAGIC) - 1;
	bad |= put(out, &pos, "boot_id", boot_id);
	bad |= put(out, &pos, "expires", number);
	bad |= put(out, &pos, "result", id != NULL ? "positive" : "negative");
	if (id != NULL) {
		if (id->username == NULL || id->uid == NULL)
			return 0;
		bad |= put(out, &pos, "username", id->username);
		bad |= put(out, &pos, "uid", id->uid);
		for (size_t i = 0; i < id->n_groups; i++)
			bad |= put(out, &pos, "group", id->groups[i]);
		bad |= put(out, &pos, "credential", id->credential_id);
		bad |= put(out, &pos, "pod_name", id->pod_name);
		bad |= put(out, &pos, "pod_uid", id->pod_uid);
		bad |= put(out, &pos, "node_name", id->node_name);
	}
	if (bad || entry_mac(key, name, out, pos, mac) < 0)
		return 0;
	if (put(out, &pos, "mac", mac) < 0)
		return 0;
	return pos;
}

/* Reads the next line as "KEY VALUE"; *value is NUL-terminated in place. */
struct reader {
	char *buf;
	size_t len, pos;
};

static int next_line(struct reader *r, const char **key, const char **value)
{
	char *start = r->buf + r->pos, *nl, *space;

	if (r->pos >= r->len)
		return -1;
	nl = memchr(start, '\n', r->len - r->pos);
	if (nl == NULL)
		return -1;
	*nl = '\0';
	space = strchr(start, ' ');
	if (space == NULL || space[1] == '\0')
		return -1;
	*space = '\0';
	*key = start;
	*value = space + 1;
	r->pos = (size_t)(nl - r->buf) + 1;
	return 0;
}

static int take_string(char **dst, const char *value)
{
	*dst = strdup(value);
	return *dst == NULL ? -1 : 0;
}

static int add_group(struct kt_identity *id, const char *value)
{
	char **groups;

	if (id->n_groups >= KT_MAX_GROUPS)
		return -1;
	groups = realloc(id->groups, (id->n_groups + 1) * sizeof(*groups));
	if (groups == NULL)
		return -1;
	id->groups = groups;
	if (take_string(&groups[id->n_groups], value) < 0)
		return -1;
	id->n_groups++;
	return 0;
}

/* Splits system:serviceaccount:NS:NAME into the identity's namespace and name. */
static int split_username(struct kt_identity *id)
{
	static const char prefix[] = "system:serviceaccount:";
	const char *rest, *colon;

	if (strncmp(id->username, prefix, sizeof(prefix) - 1) != 0)
		return -1;
	rest = id->username + sizeof(prefix) - 1;
	colon = strchr(rest, ':');
	if (colon == NULL || colon == rest || colon[1] == '\0' || strchr(colon + 1, ':') != NULL)
		return -1;
	id->sa_namespace = strndup(rest, (size_t)(colon - rest));
	id->sa_name = strdup(colon + 1);
	return id->sa_namespace != NULL && id->sa_name != NULL ? 0 : -1;
}

/* Optional identity fields, in the order the format fixes. */
static const struct {
	const char *key;
	size_t offset;
} optional_fields[] = {
	{ "credential", offsetof(struct kt_identity, credential_id) },
	{ "pod_name", offsetof(struct kt_identity, pod_name) },
	{ "pod_uid", offsetof(struct kt_identity, pod_uid) },
	{ "node_name", offsetof(struct kt_identity, node_name) },
};

static int parse_identity(struct reader *r, struct kt_identity *id, const char **key,
                          const char **value)
{
	size_t next_optional = 0;

	if (next_line(r, key, value) < 0 || strcmp(*key, "username") != 0 ||
	    take_string(&id->username, *value) < 0 || split_username(id) < 0)
		return -1;
	if (next_line(r, key, value) < 0 || strcmp(*key, "uid") != 0 ||
	    take_string(&id->uid, *value) < 0)
		return -1;
	for (;;) {
		if (next_line(r, key, value) < 0)
			return -1;
		if (strcmp(*key, "group") == 0 && next_optional == 0) {
			if (add_group(id, *value) < 0)
				return -1;
			continue;
		}
		while (next_optional < sizeof(optional_fields) / sizeof(optional_fields[0]) &&
		       strcmp(*key, optional_fields[next_optional].key) != 0)
			next_optional++;
		if (next_optional == sizeof(optional_fields) / sizeof(optional_fields[0]))
			return 0;   /* not an identity line: the caller expects "mac" */
		if (take_string((char **)((char *)id + optional_fields[next_optional].offset), *value) < 0)
			return -1;
		next_optional++;
	}
}

enum kt_cache_result kt_cache_entry_parse(const unsigned char key[KT_CACHE_KEY_LEN],
                                          const char *name, const char *boot_id,
                                          long long now_ms, const char *buf, size_t len,
                                          struct kt_identity *id)
{
	struct reader r = { 0 };
	enum kt_cache_result result = KT_CACHE_MISS;
	const char *k, *v;
	char mac[MAC_HEX + 1];
	size_t mac_at;
	unsigned long long expires;
	int positive;

	memset(id, 0, sizeof(*id));
	if (len < sizeof(MAGIC) - 1 || len > KT_CACHE_ENTRY_MAX ||
	    memcmp(buf, MAGIC, sizeof(MAGIC) - 1) != 0 || memchr(buf, '\0', len) != NULL)
		return KT_CACHE_MISS;
	r.buf = malloc(len);
	if (r.buf == NULL)
		return KT_CACHE_MISS;
	memcpy(r.buf, buf, len);
	r.len = len;
	r.pos = sizeof(MAGIC) - 1;

	if (next_line(&r, &k, &v) < 0 || strcmp(k, "boot_id") != 0 || strcmp(v, boot_id) != 0)
		goto out;
	if (next_line(&r, &k, &v) < 0 || strcmp(k, "expires") != 0 ||
	    !kt_parse_uint(v, 0, LLONG_MAX, &expires) || now_ms >= (long long)expires)
		goto out;
	if (next_line(&r, &k, &v) < 0 || strcmp(k, "result") != 0)
		goto out;
	positive = strcmp(v, "positive") == 0;
	if (!positive && strcmp(v, "negative") != 0)
		goto out;
	if (positive ? parse_identity(&r, id, &k, &v) < 0 : next_line(&r, &k, &v) < 0)
		goto out;
	/* k/v now hold the line after the record: it must be the MAC, and the last line */
	mac_at = (size_t)(k - r.buf);
	if (strcmp(k, "mac") != 0 || strlen(v) != MAC_HEX || r.pos != r.len)
		goto out;
	if (entry_mac(key, name, buf, mac_at, mac) < 0 || CRYPTO_memcmp(mac, v, MAC_HEX) != 0)
		goto out;
	result = positive ? KT_CACHE_POSITIVE : KT_CACHE_NEGATIVE;
out:
	if (result != KT_CACHE_POSITIVE)
		kt_identity_free(id);
	free(r.buf);
	return result;
}
