/*
 * The shared on-disk review cache (docs/design.md §7). sshd forks per connection and sudo
 * runs per command, so results are shared between processes through files in
 * cache_dir (tmpfs, root, 0700):
 *
 *   key            32 random bytes, 0600, created once (temp file + link, never replaced)
 *   e-<64 hex>     one entry per token + audiences (the name is an HMAC, never the token)
 *   lock-<2 hex>   256 lock stripes for cross-process single flight (flock)
 *   stats          "hits N\nmisses N\n", counted since the file was created
 *   t-<hex>        a write in progress (renamed into place; removed by clean-up if left)
 *
 * Entry name: "e-" + hex(HMAC-SHA256(key, "k8stoken-entry-name" 0x00 || be32(len) token
 *             || be32(#audiences) || for each: be32(len) audience
 *             || be32(#servers) || for each: be32(len) server URL)).
 * The server list is part of the name so that pointing a host at another cluster
 * never reuses the old cluster's answers.
 * Entry text (at most KT_CACHE_ENTRY_MAX bytes; lines in this order, identity lines only
 * for a positive result, optional ones only when set):
 *
 *   k8stoken-cache 1
 *   boot_id <the kernel's boot id>
 *   expires <CLOCK_BOOTTIME milliseconds>
 *   result positive|negative
 *   username <system:serviceaccount:NS:NAME>
 *   uid <uid>
 *   group <group>            (one line per group)
 *   credential <id>          (optional)
 *   pod_name <name>          (optional)
 *   pod_uid <uid>            (optional)
 *   node_name <name>         (optional)
 *   mac <64 hex>
 *
 * mac = hex(HMAC-SHA256(key, "k8stoken-entry-mac" 0x00 || entry name || 0x00 || every
 * byte before the "mac " line)). Binding the name stops an entry copied to another
 * name; the boot id and CLOCK_BOOTTIME make wall-clock jumps and reboots irrelevant.
 * Anything unexpected (owner, mode, type, size, format, MAC, boot id, expiry) is a miss.
 */
#ifndef KT_CACHE_H
#define KT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "identity.h"
#include "reason.h"

#define KT_CACHE_KEY_LEN     32
#define KT_CACHE_NAME_LEN    66          /* "e-" + 64 hex */
#define KT_CACHE_ENTRY_MAX   8192
#define KT_CACHE_MAX_ENTRIES 10000       /* clean-up removes the oldest beyond this */

struct kt_cache {
	int dirfd;                           /* -1: no cache */
	unsigned char key[KT_CACHE_KEY_LEN];
};

enum kt_cache_result {
	KT_CACHE_MISS,
	KT_CACHE_POSITIVE,                   /* *id filled from the entry */
	KT_CACHE_NEGATIVE,                   /* a remembered "not authenticated" */
};

/* ---- entry format (pure; cache_entry.c) ---- */

/*
 * Formats an entry into out (size KT_CACHE_ENTRY_MAX). id NULL means negative.
 * Returns the length, 0 when it does not fit or a field holds a newline.
 */
size_t kt_cache_entry_format(const unsigned char key[KT_CACHE_KEY_LEN], const char *name,
                             const char *boot_id, long long expires_ms,
                             const struct kt_identity *id, char *out);

/*
 * Parses and verifies an entry read from file `name`. Returns POSITIVE (id filled,
 * caller frees) or NEGATIVE only when the format, the MAC, the boot id match and
 * now_ms < expires; MISS otherwise (*id left zeroed).
 */
enum kt_cache_result kt_cache_entry_parse(const unsigned char key[KT_CACHE_KEY_LEN],
                                          const char *name, const char *boot_id,
                                          long long now_ms, const char *buf, size_t len,
                                          struct kt_identity *id);

/* ---- the directory (cache.c) ---- */

/*
 * Opens (creating when missing) dir as the cache: a directory owned by `owner`,
 * mode without group/other bits, reached without following a symbolic link; and
 * its key (created when missing). On failure c->dirfd is -1, err says why and the
 * caller works uncached.
 */
int kt_cache_open(struct kt_cache *c, const char *dir, uid_t owner, char *err, size_t errlen);
void kt_cache_close(struct kt_cache *c);

/*
 * Entry name for a token under the configured audiences and servers (NUL-terminated,
 * KT_CACHE_NAME_LEN chars; "" when it cannot be computed).
 */
void kt_cache_name(const struct kt_cache *c, const char *token, size_t len,
                   char *const *audiences, size_t n_audiences, char *const *servers,
                   size_t n_servers, char name[KT_CACHE_NAME_LEN + 1]);

enum kt_cache_result kt_cache_lookup(const struct kt_cache *c, const char *name,
                                     struct kt_identity *id);

/* Stores a positive (id != NULL) or negative result for ttl_ms; failures are silent misses later. */
int kt_cache_store(const struct kt_cache *c, const char *name, const struct kt_identity *id,
                   long long ttl_ms);

/*
 * Takes the lock stripe of `name`, waiting until deadline_ms (CLOCK_MONOTONIC ms).
 * Returns a descriptor to pass to kt_cache_unlock, or -1 (timeout or error).
 */
int kt_cache_lock(const struct kt_cache *c, const char *name, long long deadline_ms);
void kt_cache_unlock(int lockfd);

/* Adds one hit or miss to the stats file. */
void kt_cache_count(const struct kt_cache *c, bool hit);

struct kt_cache_stats {
	unsigned long long entries, hits, misses;
};
int kt_cache_stats(const struct kt_cache *c, struct kt_cache_stats *st);

/*
 * Removes entries: all of them (ns == NULL) or those of ServiceAccount ns/name
 * (verified entries only). *removed counts them.
 */
int kt_cache_flush(const struct kt_cache *c, const char *ns, const char *name, size_t *removed);

/* Removes expired, invalid and left-over temporary files; the oldest beyond KT_CACHE_MAX_ENTRIES. */
void kt_cache_clean(const struct kt_cache *c);

#endif
