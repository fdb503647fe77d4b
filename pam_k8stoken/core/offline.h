/*
 * Bounded offline grace (docs/design.md §6.5): what this host remembers of positive
 * TokenReviews, by ServiceAccount uid, for offline_grace seconds. Stored as an ordinary
 * positive cache entry (cache.h) whose name is computed from the uid instead of a token, so
 * it has every guarantee of one (MAC, boot id, expiry, clean-up, `k8stoken cache flush`).
 */
#ifndef KT_OFFLINE_H
#define KT_OFFLINE_H

#include "cache.h"
#include "config.h"
#include "identity.h"

/* After a positive TokenReview: remembers id for cfg->offline_grace seconds (0: nothing). */
int kt_offline_remember(const struct kt_cache *c, const struct kt_config *cfg,
                        const struct kt_identity *id);

/* The identity of ServiceAccount sa_uid reviewed within offline_grace: 0 (id filled) or -1. */
int kt_offline_recall(const struct kt_cache *c, const struct kt_config *cfg, const char *sa_uid,
                      struct kt_identity *id);

#endif
