/* PAM entry points: thin on purpose, everything happens in auth.c. */
#include <security/pam_modules.h>

#include "auth.h"

#define KT_EXPORT __attribute__((visibility("default")))

KT_EXPORT int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return kt_auth_authenticate(pamh, flags, argc, argv);
}

KT_EXPORT int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	return PAM_SUCCESS;
}

KT_EXPORT int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	return kt_auth_acct_mgmt(pamh, flags, argc, argv);
}
