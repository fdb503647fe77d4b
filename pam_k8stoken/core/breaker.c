/* The host-wide circuit breaker in the cache directory (breaker.h). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "breaker.h"
#include "cache_io.h"
#include "io.h"
#include "number.h"
#include "sealed.h"
#include "secure.h"
#include "trusted_owner.h"

#define SEAL_DOMAIN "k8stoken-breaker"
#define STATE_MAX 256

/* "b-" or "bp-" + 32 hex of SHA-256(server URL): the same server has one state everywhere. */
static void file_name(const char *prefix, const char *server, char out[40])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char hex[33];

	SHA256((const unsigned char *)server, strlen(server), md);
	kt_hex(md, 16, hex);
	snprintf(out, 40, "%s%s", prefix, hex);
}

int kt_breaker_open_cache(struct kt_cache *c, const char *dir)
{
	struct stat st;
	char err[160];

	c->dirfd = -1;
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return -1;
	return kt_cache_open(c, dir, KT_TRUSTED_UID, err, sizeof(err));
}

void kt_breaker_get(const struct kt_cache *c, const char *server, struct kt_breaker_info *info)
{
	char name[40], boot_id[40];
	unsigned long long failures, until;
	size_t len;
	char *text;
	const char *p, *end;

	memset(info, 0, sizeof(*info));
	if (c->dirfd < 0 || kt_cache_boot_id(boot_id) < 0)
		return;
	file_name("b-", server, name);
	text = kt_sealed_read(c, name, SEAL_DOMAIN, STATE_MAX, &len);
	if (text == NULL)
		return;
	/* all of "boot_id ID\nfailures N\nopen_until MS\n", as kt_breaker_record writes it */
	p = text + 45;
	end = text + len;
	if (len > 45 && strncmp(text, "boot_id ", 8) == 0 && strncmp(text + 8, boot_id, 36) == 0 &&
	    text[44] == '\n' && kt_take_uint_line(&p, end, "failures", 1, 63, &failures) &&
	    kt_take_uint_line(&p, end, "open_until", 0, INT64_MAX, &until) && p == end) {
		info->failures = (unsigned)failures;
		info->open_until_ms = (long long)until;
		info->state = kt_clock_ms(CLOCK_BOOTTIME) < info->open_until_ms ? KT_BREAKER_OPEN
		                                                                 : KT_BREAKER_HALF_OPEN;
	}
	free(text);
}

bool kt_breaker_admit(const struct kt_cache *c, const char *server, int *probe_fd)
{
	struct kt_breaker_info info;
	char name[40];
	int fd;

	*probe_fd = -1;
	kt_breaker_get(c, server, &info);
	if (info.state == KT_BREAKER_CLOSED)
		return true;
	if (info.state == KT_BREAKER_OPEN)
		return false;
	file_name("bp-", server, name);
	fd = kt_cache_open_private(c->dirfd, name, O_RDWR | O_CREAT, 0);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);   /* another login probes it: this one skips it */
		return false;
	}
	/* the probe that held the lock before may have closed or re-opened it meanwhile */
	kt_breaker_get(c, server, &info);
	if (info.state == KT_BREAKER_OPEN) {
		close(fd);
		return false;
	}
	*probe_fd = fd;
	return true;
}

bool kt_breaker_is_failure(enum kt_reason reason, long http_status)
{
	if (reason == KT_R_TRANSPORT || reason == KT_R_TIMEOUT)
		return true;
	return reason == KT_R_HTTP_STATUS && (http_status == 429 || http_status >= 500);
}

void kt_breaker_record(const struct kt_cache *c, const char *server, enum kt_reason reason,
                       long http_status, long retry_after_s, int probe_fd)
{
	struct kt_breaker_info info;
	char name[40], boot_id[40], text[STATE_MAX];
	long long backoff;
	int n;

	if (c->dirfd < 0 || reason == KT_R_NOMEM || reason == KT_R_CIRCUIT_OPEN)
		goto out;
	kt_breaker_get(c, server, &info);
	file_name("b-", server, name);
	if (!kt_breaker_is_failure(reason, http_status)) {
		if (info.failures > 0)
			unlinkat(c->dirfd, name, 0);
		goto out;
	}
	if (kt_cache_boot_id(boot_id) < 0)
		goto out;
	info.failures = info.failures < 63 ? info.failures + 1 : 63;
	backoff = info.failures > 7 ? KT_BREAKER_MAX_MS
	                            : (long long)KT_BREAKER_FIRST_MS << (info.failures - 1);
	if (backoff > KT_BREAKER_MAX_MS)
		backoff = KT_BREAKER_MAX_MS;
	if (retry_after_s > KT_BREAKER_RETRY_AFTER_MAX)
		retry_after_s = KT_BREAKER_RETRY_AFTER_MAX;
	if (retry_after_s * 1000 > backoff)
		backoff = retry_after_s * 1000;
	n = snprintf(text, sizeof(text), "boot_id %s\nfailures %u\nopen_until %lld\n", boot_id,
	             info.failures, kt_clock_ms(CLOCK_BOOTTIME) + backoff);
	if (n > 0 && (size_t)n < sizeof(text))
		kt_sealed_write(c, name, SEAL_DOMAIN, text, (size_t)n);   /* best effort */
out:
	if (probe_fd >= 0)
		close(probe_fd);
}

bool kt_breaker_all_open(const struct kt_cache *c, const struct kt_config *cfg)
{
	struct kt_breaker_info info;

	if (c->dirfd < 0 || cfg->n_servers == 0)
		return false;
	for (size_t i = 0; i < cfg->n_servers; i++) {
		kt_breaker_get(c, cfg->servers[i], &info);
		if (info.state != KT_BREAKER_OPEN)
			return false;
	}
	return true;
}

bool kt_breaker_all_failing(const struct kt_cache *c, const struct kt_config *cfg)
{
	struct kt_breaker_info info;

	if (c->dirfd < 0 || cfg->n_servers == 0)
		return false;
	for (size_t i = 0; i < cfg->n_servers; i++) {
		kt_breaker_get(c, cfg->servers[i], &info);
		if (info.state == KT_BREAKER_CLOSED)
			return false;
	}
	return true;
}
