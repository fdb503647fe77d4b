/* The one log line per decision (docs/design.md §8). Never the token, never a body. */
#ifndef KT_LOGLINE_H
#define KT_LOGLINE_H

#include <stddef.h>

#include "decide.h"

/*
 * Formats "allow|deny user=… sa=NS/NAME uid=… credential=… pod=… cache=miss
 * access=off server=URL ms=N fp=… reason=CODE [rhost=…] [detail="…"]" into out.
 * The user name appears only once it is known to be a local account.
 */
void kt_logline_format(const struct kt_decision *d, const char *user, const char *rhost,
                       char *out, size_t outlen);

/* off, none, allowed, denied: the access= field (docs/design.md §10). */
const char *kt_access_use_name(enum kt_access_use a);

#endif
