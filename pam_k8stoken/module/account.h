/* The local account PAM is authenticating, and the uid policy that applies to it. */
#ifndef KT_ACCOUNT_H
#define KT_ACCOUNT_H

#include <sys/types.h>

#include "config.h"
#include "reason.h"

/*
 * KT_R_UNKNOWN_USER when name is not a sane account name or has no passwd entry,
 * KT_R_UID_POLICY when its uid is below min_uid or is 0 without allow_root,
 * KT_R_OK otherwise (*uid filled). Uses getpwnam_r: no static buffers.
 */
enum kt_reason kt_account_check(const struct kt_config *cfg, const char *name, uid_t *uid);

#endif
