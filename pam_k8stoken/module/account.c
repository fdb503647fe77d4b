#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "rules.h"

enum kt_reason kt_account_check(const struct kt_config *cfg, const char *name, uid_t *uid)
{
	struct passwd pw, *found = NULL;
	size_t buflen = 4096;
	char *buf = NULL;
	enum kt_reason rc = KT_R_UNKNOWN_USER;
	int err;

	if (name == NULL || !kt_valid_local_name(name))
		return KT_R_UNKNOWN_USER;
	for (;;) {
		char *nbuf = realloc(buf, buflen);
		if (nbuf == NULL) {
			rc = KT_R_NOMEM;
			goto out;
		}
		buf = nbuf;
		err = getpwnam_r(name, &pw, buf, buflen, &found);
		if (err != ERANGE || buflen >= 1024 * 1024)
			break;
		buflen *= 4;
	}
	if (err != 0 && err != ENOENT) {
		rc = KT_R_SYSTEM;
		goto out;
	}
	if (found == NULL)
		goto out;
	*uid = pw.pw_uid;
	if (pw.pw_uid == 0)
		rc = cfg->allow_root ? KT_R_OK : KT_R_UID_POLICY;
	else
		rc = pw.pw_uid >= cfg->min_uid ? KT_R_OK : KT_R_UID_POLICY;
out:
	free(buf);
	return rc;
}
