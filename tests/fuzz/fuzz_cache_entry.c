/*
 * The cache entry format (cache_entry.c, docs/design.md §7). The first input byte picks a
 * mode:
 *   even: the rest is read as an entry file: it must be a miss, since no input can carry
 *         the MAC of a key it does not know (nor the format a hit without one);
 *   odd:  the rest gives an identity (lines: NS, NAME, uid, groups..., then "credential",
 *         "pod_name", "pod_uid", "node_name" values after a line "--") and two bytes
 *         that pick a bit: format then parse gives the same identity back (positive and
 *         negative), the same entry under another name, boot id or after expiry is a miss,
 *         and the entry with that one bit flipped is a miss.
 */
#include <string.h>

#include "cache.h"
#include "fuzz.h"

#define NOW_MS 1000000LL
#define MAX_FIELDS 40

static const unsigned char key[KT_CACHE_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const char name[] = "e-00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
static const char boot_id[] = "6c2b1f8e-0d3a-4f5e-9b7a-1c2d3e4f5a6b";

static int same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void check_same_identity(const struct kt_identity *a, const struct kt_identity *b)
{
	FUZZ_ASSERT(same(a->username, b->username) && same(a->uid, b->uid) &&
	            same(a->sa_namespace, b->sa_namespace) && same(a->sa_name, b->sa_name) &&
	            a->n_groups == b->n_groups && same(a->credential_id, b->credential_id) &&
	            same(a->pod_name, b->pod_name) && same(a->pod_uid, b->pod_uid) &&
	            same(a->node_name, b->node_name));
	for (size_t i = 0; i < a->n_groups; i++)
		FUZZ_ASSERT(strcmp(a->groups[i], b->groups[i]) == 0);
}

static void check_miss(const char *entry_name, const char *boot, long long now, const char *buf,
                       size_t len)
{
	struct kt_identity id;

	FUZZ_ASSERT(kt_cache_entry_parse(key, entry_name, boot, now, buf, len, &id) == KT_CACHE_MISS);
	FUZZ_ASSERT(id.username == NULL && id.groups == NULL && id.uid == NULL);
}

/* Formats id (NULL: negative), parses it back, then tries every way it must not be used. */
static void round_trip(const struct kt_identity *in, unsigned flip)
{
	char *entry = malloc(KT_CACHE_ENTRY_MAX);
	long long expires = NOW_MS + 30000;
	struct kt_identity out;
	size_t len;

	FUZZ_ASSERT(entry != NULL);
	len = kt_cache_entry_format(key, name, boot_id, expires, in, entry);
	if (len == 0) {   /* does not fit, or a field is empty or holds a newline */
		free(entry);
		return;
	}
	FUZZ_ASSERT(len <= KT_CACHE_ENTRY_MAX);
	FUZZ_ASSERT(kt_cache_entry_parse(key, name, boot_id, NOW_MS, entry, len, &out) ==
	            (in != NULL ? KT_CACHE_POSITIVE : KT_CACHE_NEGATIVE));
	if (in != NULL)
		check_same_identity(in, &out);
	kt_identity_free(&out);
	check_miss("e-ff", boot_id, NOW_MS, entry, len);
	check_miss(name, "another-boot", NOW_MS, entry, len);
	check_miss(name, boot_id, expires, entry, len);
	check_miss(name, boot_id, NOW_MS, entry, len - 1);
	entry[(flip / 8) % len] ^= (char)(1u << (flip % 8));
	check_miss(name, boot_id, NOW_MS, entry, len);
	free(entry);
}

/* "NS\nNAME\nUID\nGROUP...\n--\nCREDENTIAL\nPOD_NAME\nPOD_UID\nNODE_NAME" into id (pointers into text). */
static void take_identity(char *text, struct kt_identity *id, char *username, size_t ulen,
                          char **groups)
{
	char *field[MAX_FIELDS];
	size_t n = 0, i;
	char **optional[] = { &id->credential_id, &id->pod_name, &id->pod_uid, &id->node_name };

	memset(id, 0, sizeof(*id));
	for (char *p = text; p != NULL && n < MAX_FIELDS; n++) {
		char *nl = strchr(p, '\n');

		field[n] = p;
		if (nl != NULL)
			*nl = '\0';
		p = nl != NULL ? nl + 1 : NULL;
	}
	id->sa_namespace = n > 0 ? field[0] : "pam";
	id->sa_name = n > 1 ? field[1] : "pam-user";
	id->uid = n > 2 ? field[2] : "8f5660ff";
	snprintf(username, ulen, "system:serviceaccount:%s:%s", id->sa_namespace, id->sa_name);
	id->username = username;
	for (i = 3; i < n && strcmp(field[i], "--") != 0; i++)
		groups[id->n_groups++] = field[i];
	id->groups = groups;
	for (size_t k = 0; i + 1 + k < n && k < 4; k++)
		*optional[k] = field[i + 1 + k];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kt_identity id;
	char *text, *groups[MAX_FIELDS], username[KT_CACHE_ENTRY_MAX];
	unsigned flip;

	if (size < 3)
		return 0;
	if (data[0] % 2 == 0) {
		check_miss(name, boot_id, NOW_MS, (const char *)data + 1, size - 1);
		return 0;
	}
	flip = (unsigned)data[1] << 8 | data[2];
	text = fuzz_cstr(data + 3, size - 3);
	take_identity(text, &id, username, sizeof(username), groups);
	/* an identity the parser would not split back the same way is not a round trip */
	if (strchr(id.sa_namespace, ':') == NULL && strchr(id.sa_name, ':') == NULL &&
	    id.sa_namespace[0] != '\0' && id.sa_name[0] != '\0')
		round_trip(&id, flip);
	round_trip(NULL, flip);
	free(text);
	return 0;
}
