/*
 * The reviewer credential's own lifecycle (docs/design.md §9.1, §9.2): `k8stoken renew` replaces a
 * bound reviewer token with a new one of the same lifetime before it expires, `k8stoken
 * enroll --bundle` installs what `kubectl k8stoken enroll` made, and selftest warns about a
 * credential close to its end.
 */
#ifndef KT_RENEW_H
#define KT_RENEW_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

/* What a reviewer token says about itself (unverified: only used to decide when to renew). */
struct kt_cred_claims {
	bool has_exp;            /* false: a legacy Secret-based token, which never expires */
	long long exp, iat;      /* seconds since the epoch; iat 0 when absent */
	char ns[64], name[254];  /* the ServiceAccount, from "sub" */
};

/* Claims of tok[0..len); -1 (with err filled) when it is not a ServiceAccount token. */
int kt_cred_claims(const char *tok, size_t len, struct kt_cred_claims *c, char *err, size_t errlen);

/*
 * Reads the reviewer token of cfg and its claims. 1: read (c filled), 0: cfg uses a client
 * certificate (nothing to read), -1: cannot (err filled).
 */
int kt_cred_read_claims(const struct kt_config *cfg, struct kt_cred_claims *c, char *err,
                        size_t errlen);

/*
 * Replaces path with data atomically: a temporary file in the same directory, owner uid:gid
 * and mode, fsync, rename, fsync of the directory. -1 with err filled (path unchanged).
 */
int kt_replace_file(const char *path, const char *data, size_t len, uid_t uid, gid_t gid,
                    mode_t mode, char *err, size_t errlen);

/* `k8stoken renew [--force]`: one line on stderr; returns the exit status (0, 2 or 3). */
int kt_renew(const char *conf, bool force);

/* `k8stoken enroll --bundle DIR`: installs the bundle; returns 0 or an exit status (2, 3). */
int kt_enroll_bundle(const char *bundle, const char *conf, bool force);

#endif
