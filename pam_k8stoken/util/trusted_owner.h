/*
 * The owner that the configuration, the reviewer credentials, the key-set file and the
 * cache directory must have: root (0) in every installed build. A test build for the
 * unprivileged fast tier (`make check-fast`, docs/design.md §1) sets TRUSTED_UID to the
 * user running the tests; such a build refuses to run as root (kt_config_load), so it
 * cannot stand in for a real one.
 */
#ifndef KT_TRUSTED_OWNER_H
#define KT_TRUSTED_OWNER_H

#ifndef KT_TRUSTED_UID
#define KT_TRUSTED_UID 0
#endif

#endif
