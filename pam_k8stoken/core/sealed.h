/*
 * Sealed state files in the cache directory (docs/design.md §7): the key set, the circuit
 * breaker's state. Same guarantees as review entries: root's private files, written to a
 * temporary file and renamed into place, and a MAC under the cache key that binds the text
 * to its file name and to its kind, so a file copied, truncated or edited is refused.
 *
 *   TEXT (any bytes, the caller's format)
 *   mac <64 hex>\n      hex(HMAC-SHA256(key, domain 0x00 name 0x00 TEXT))
 */
#ifndef KT_SEALED_H
#define KT_SEALED_H

#include <stddef.h>

#include "cache.h"

/* Writes text[0..len) sealed under `domain` as `name`, atomically. 0 or -1 (errno set). */
int kt_sealed_write(const struct kt_cache *c, const char *name, const char *domain,
                    const char *text, size_t len);

/*
 * Reads `name` (at most max bytes in all) and checks its seal. Returns a malloc'ed copy of
 * TEXT, NUL-terminated, its length in *len; NULL when missing, too big, not ours or forged.
 */
char *kt_sealed_read(const struct kt_cache *c, const char *name, const char *domain,
                     size_t max, size_t *len);

#endif
