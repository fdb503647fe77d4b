#include <string.h>
#include <syslog.h>

#include "reason.h"

_Static_assert(KT_R_OK == 0, "reason_list.h must start with OK");

static const struct {
	const char *name;
	const char *what;
	enum kt_reason_class class;
	int log_priority;
} reasons[KT_R__COUNT] = {
#define KT_REASON(id, name, class, pam, log, tool_exit, what) \
	[KT_R_##id] = { name, what, class, log },
#include "reason_list.h"
#undef KT_REASON
};

const char *kt_reason_name(enum kt_reason r)
{
	return (unsigned)r < KT_R__COUNT ? reasons[r].name : "unknown";
}

enum kt_reason kt_reason_from_name(const char *name)
{
	for (unsigned i = 0; i < KT_R__COUNT; i++)
		if (strcmp(reasons[i].name, name) == 0)
			return (enum kt_reason)i;
	return KT_R__COUNT;
}

/* Out of range: never an allow. */
enum kt_reason_class kt_reason_class(enum kt_reason r)
{
	return (unsigned)r < KT_R__COUNT ? reasons[r].class : KT_CLASS_UNAVAILABLE;
}

int kt_reason_log_priority(enum kt_reason r)
{
	return (unsigned)r < KT_R__COUNT ? reasons[r].log_priority : LOG_ERR;
}

const char *kt_reason_what(enum kt_reason r)
{
	return (unsigned)r < KT_R__COUNT ? reasons[r].what : "unknown outcome";
}
