/* Checks of single configuration values; each returns NULL when fine, else what is wrong. */
#ifndef KT_CONFIG_VALUES_H
#define KT_CONFIG_VALUES_H

#include <stdbool.h>

/* An absolute path without whitespace or control characters, shorter than PATH_MAX. */
const char *kt_check_path(const char *v);
/* https://HOST[:PORT][/path-prefix] only: no user information, query or fragment (docs/security.md B04). */
const char *kt_check_server(const char *v);
/* Printable text: valid UTF-8 without C0/C1 controls (a prompt reaches a terminal). */
bool kt_printable_utf8(const char *v);

#endif
