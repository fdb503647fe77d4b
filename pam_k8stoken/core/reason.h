/*
 * Closed set of outcomes shared by every unit. The rows of reason_list.h are the only list:
 * the enum, names, classes, log priorities, PAM codes (module/auth.c) and tool exit statuses
 * (tools/k8stoken.c) are all made from them.
 */
#ifndef KT_REASON_H
#define KT_REASON_H

/* Which of the three kinds of outcome a reason is. */
enum kt_reason_class {
	KT_CLASS_ALLOW,       /* KT_R_OK, KT_R_OFFLINE_GRACE */
	KT_CLASS_DENY,        /* a definitive no about this token or account */
	KT_CLASS_UNAVAILABLE, /* no answer could be had: outage, misconfiguration, local failure */
};

enum kt_reason {
#define KT_REASON(id, name, class, pam, log, tool_exit, what) KT_R_##id,
#include "reason_list.h"
#undef KT_REASON
	KT_R__COUNT
};

/* Stable lower_snake name used in log lines and tool output ("not_mapped"). */
const char *kt_reason_name(enum kt_reason r);
enum kt_reason_class kt_reason_class(enum kt_reason r);
/* syslog priority of the decision line for this outcome (docs/design.md §8.2). */
int kt_reason_log_priority(enum kt_reason r);
/* One line saying what happened ("a deny rule matched"). */
const char *kt_reason_what(enum kt_reason r);

/* Parses a name back; returns KT_R__COUNT when unknown. */
enum kt_reason kt_reason_from_name(const char *name);

#endif
