/* The record of positive reviews by ServiceAccount uid that offline grace relies on (offline.h). */
#include <stdio.h>
#include <string.h>

#include "offline.h"

/* ':' is outside the token alphabet: no token can have the name of a record. */
#define RECORD_PREFIX "k8stoken-offline-grace:"

static void record_name(const struct kt_cache *c, const struct kt_config *cfg, const char *sa_uid,
                        char name[KT_CACHE_NAME_LEN + 1])
{
	char key[sizeof(RECORD_PREFIX) + 128];
	int n = snprintf(key, sizeof(key), RECORD_PREFIX "%s", sa_uid);

	name[0] = '\0';
	if (n > 0 && (size_t)n < sizeof(key))
		kt_cache_name(c, key, (size_t)n, cfg->audiences, cfg->n_audiences, cfg->servers,
		              cfg->n_servers, name);
}

int kt_offline_remember(const struct kt_cache *c, const struct kt_config *cfg,
                        const struct kt_identity *id)
{
	char name[KT_CACHE_NAME_LEN + 1];

	if (cfg->offline_grace == 0 || id->uid == NULL || id->uid[0] == '\0')
		return 0;
	record_name(c, cfg, id->uid, name);
	return kt_cache_store(c, name, id, (long long)cfg->offline_grace * 1000);
}

int kt_offline_recall(const struct kt_cache *c, const struct kt_config *cfg, const char *sa_uid,
                      struct kt_identity *id)
{
	char name[KT_CACHE_NAME_LEN + 1];

	memset(id, 0, sizeof(*id));
	if (sa_uid[0] == '\0')
		return -1;
	record_name(c, cfg, sa_uid, name);
	if (kt_cache_lookup(c, name, id) != KT_CACHE_POSITIVE || id->uid == NULL ||
	    strcmp(id->uid, sa_uid) != 0) {
		kt_identity_free(id);
		return -1;
	}
	return 0;
}
