/* PAM glue: one pam_sm_authenticate / pam_sm_acct_mgmt run. The only place that returns PAM codes. */
#ifndef KT_AUTH_H
#define KT_AUTH_H

#include <security/pam_modules.h>

int kt_auth_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv);
int kt_auth_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv);

#endif
