/* Sealed state files in the cache directory (sealed.h). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache_io.h"
#include "io.h"
#include "sealed.h"
#include "secure.h"

#define MAC_LINE_LEN (4 + 64 + 1)   /* "mac " + 64 hex + "\n" */

static int seal(const struct kt_cache *c, const char *name, const char *domain,
                const char *text, size_t len, char out[65])
{
	size_t dlen = strlen(domain) + 1, nlen = strlen(name) + 1;
	unsigned char md[EVP_MAX_MD_SIZE], *msg = malloc(dlen + nlen + len);
	unsigned int mdlen = 0;
	bool ok;

	if (msg == NULL)
		return -1;
	memcpy(msg, domain, dlen);
	memcpy(msg + dlen, name, nlen);
	memcpy(msg + dlen + nlen, text, len);
	ok = HMAC(EVP_sha256(), c->key, KT_CACHE_KEY_LEN, msg, dlen + nlen + len, md, &mdlen) != NULL &&
	     mdlen == 32;
	free(msg);
	if (!ok)
		return -1;
	kt_hex(md, mdlen, out);
	return 0;
}

int kt_sealed_write(const struct kt_cache *c, const char *name, const char *domain,
                    const char *text, size_t len)
{
	char mac[65], line[MAC_LINE_LEN + 1];

	if (c->dirfd < 0) {
		errno = EINVAL;
		return -1;
	}
	if (seal(c, name, domain, text, len, mac) < 0) {
		errno = ENOMEM;
		return -1;
	}
	memcpy(line, "mac ", 4);
	memcpy(line + 4, mac, 64);
	line[68] = '\n';
	return kt_cache_write_file(c->dirfd, name, text, len, line, MAC_LINE_LEN);
}

char *kt_sealed_read(const struct kt_cache *c, const char *name, const char *domain,
                     size_t max, size_t *len)
{
	char mac[65], *buf;
	ssize_t n;
	size_t text_len;
	int fd;

	*len = 0;
	if (c->dirfd < 0 || max < MAC_LINE_LEN)
		return NULL;
	fd = kt_cache_open_private(c->dirfd, name, O_RDONLY, max);
	if (fd < 0)
		return NULL;
	buf = malloc(max + 1);
	n = buf != NULL ? kt_read_all(fd, buf, max + 1) : -1;
	close(fd);
	if (n < MAC_LINE_LEN || (size_t)n > max)
		goto bad;
	text_len = (size_t)n - MAC_LINE_LEN;
	if (memcmp(buf + text_len, "mac ", 4) != 0 || buf[n - 1] != '\n' ||
	    (text_len > 0 && buf[text_len - 1] != '\n'))
		goto bad;
	if (seal(c, name, domain, buf, text_len, mac) < 0 ||
	    CRYPTO_memcmp(mac, buf + text_len + 4, 64) != 0)
		goto bad;
	buf[text_len] = '\0';
	*len = text_len;
	return buf;
bad:
	free(buf);
	return NULL;
}
