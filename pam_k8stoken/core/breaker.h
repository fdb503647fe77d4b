/*
 * The circuit breaker (docs/design.md §6.4): a server that failed at transport level
 * (refused, timeout, TLS) or answered 429/5xx is skipped by every process of the host for a
 * backoff (1 s, doubling to 60 s; a Retry-After of up to 300 s lengthens it), recorded in
 * the cache directory as a sealed file "b-<hex>". When the backoff ends one process at a
 * time probes the server (flock on "bp-<hex>"); its success closes the circuit. The breaker
 * only ever saves waiting: it never turns an answer into another one.
 */
#ifndef KT_BREAKER_H
#define KT_BREAKER_H

#include <stdbool.h>

#include "cache.h"
#include "config.h"
#include "reason.h"

#define KT_BREAKER_FIRST_MS  1000
#define KT_BREAKER_MAX_MS    60000
#define KT_BREAKER_RETRY_AFTER_MAX 300   /* seconds of Retry-After honoured at most */

enum kt_breaker_state {
	KT_BREAKER_CLOSED,     /* no recent failure: ask it */
	KT_BREAKER_OPEN,       /* in its backoff: skip it */
	KT_BREAKER_HALF_OPEN,  /* backoff over: one process may probe it */
};

struct kt_breaker_info {
	enum kt_breaker_state state;
	unsigned failures;       /* consecutive */
	long long open_until_ms; /* CLOCK_BOOTTIME */
};

/*
 * Opens the cache directory for the breaker only if it exists: with the review cache, the
 * key set and offline grace all off nothing creates it, and the breaker is then off too
 * (docs/design.md §6.4). -1 and c->dirfd -1 otherwise.
 */
int kt_breaker_open_cache(struct kt_cache *c, const char *dir);

/* The state of `server`; CLOSED when the cache directory is unusable (c->dirfd < 0). */
void kt_breaker_get(const struct kt_cache *c, const char *server, struct kt_breaker_info *info);

/*
 * Whether to send a request to `server` now: true when closed, or half-open and this process
 * won the probe (*probe_fd then holds the probe lock until kt_breaker_record); false when
 * open, or half-open while another process probes.
 */
bool kt_breaker_admit(const struct kt_cache *c, const char *server, int *probe_fd);

/* Whether an outcome trips the breaker: transport, timeout, 429 or 5xx. */
bool kt_breaker_is_failure(enum kt_reason reason, long http_status);

/*
 * Records an attempt's outcome: a failure opens (or re-opens, doubling) the circuit for
 * max(backoff, min(retry_after_s, 300 s)); anything else closes it. Releases probe_fd.
 */
void kt_breaker_record(const struct kt_cache *c, const char *server, enum kt_reason reason,
                       long http_status, long retry_after_s, int probe_fd);

/* True when every configured server is OPEN (not half-open): a review cannot start. */
bool kt_breaker_all_open(const struct kt_cache *c, const struct kt_config *cfg);
/* True when every configured server's last outcome was a failure (open or half-open). */
bool kt_breaker_all_failing(const struct kt_cache *c, const struct kt_config *cfg);

#endif
