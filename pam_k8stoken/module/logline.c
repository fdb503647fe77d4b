#include <stdio.h>
#include <string.h>

#include "logline.h"
#include "secure.h"

const char *kt_access_use_name(enum kt_access_use a)
{
	switch (a) {
	case KT_ACCESS_ALLOWED:
		return "allowed";
	case KT_ACCESS_DENIED:
		return "denied";
	case KT_ACCESS_NONE:
		return "none";
	case KT_ACCESS_OFF:
		break;
	}
	return "off";
}

/* Appends " key=value" (value escaped) when value is set. */
static void field(char *out, size_t outlen, size_t *pos, const char *key, const char *value)
{
	char esc[256];
	int n;

	if (value == NULL || value[0] == '\0' || *pos >= outlen)
		return;
	kt_escape(value, strlen(value), esc, sizeof(esc));
	n = snprintf(out + *pos, outlen - *pos, " %s=%s", key, esc);
	if (n > 0)
		*pos += (size_t)n;
}

void kt_logline_format(const struct kt_decision *d, const char *user, const char *rhost,
                       char *out, size_t outlen)
{
	char sa[512] = "", ms[24], detail[4 * sizeof(d->detail)];
	size_t pos;
	int n;

	n = snprintf(out, outlen, "%s",
	             kt_reason_class(d->reason) == KT_CLASS_ALLOW ? "allow" : "deny");
	pos = n > 0 ? (size_t)n : 0;
	field(out, outlen, &pos, "user", d->account_checked ? user : "(unknown)");
	if (d->id.sa_namespace != NULL)
		snprintf(sa, sizeof(sa), "%s/%s", d->id.sa_namespace, d->id.sa_name);
	field(out, outlen, &pos, "sa", sa);
	field(out, outlen, &pos, "uid", d->id.uid);
	field(out, outlen, &pos, "credential", d->id.credential_id);
	field(out, outlen, &pos, "pod", d->id.pod_name);
	if (d->reviewed || d->cache == KT_CACHE_USED_HIT)
		field(out, outlen, &pos, "cache", d->cache == KT_CACHE_USED_HIT ? "hit"
		                                  : d->cache == KT_CACHE_USED_MISS ? "miss" : "off");
	if (d->reviewed || d->cache == KT_CACHE_USED_HIT)
		field(out, outlen, &pos, "access", kt_access_use_name(d->access));
	field(out, outlen, &pos, "server", d->server);
	snprintf(ms, sizeof(ms), "%ld", d->elapsed_ms);
	field(out, outlen, &pos, "ms", ms);
	field(out, outlen, &pos, "fp", d->fingerprint);
	field(out, outlen, &pos, "reason", kt_reason_name(d->reason));
	field(out, outlen, &pos, "rhost", rhost);
	if (d->detail[0] != '\0' && pos < outlen) {
		/* untrusted text like every value here, escaped whole: the quotes only delimit it */
		kt_escape(d->detail, strlen(d->detail), detail, sizeof(detail));
		snprintf(out + pos, outlen - pos, " detail=\"%s\"", detail);
	}
}
