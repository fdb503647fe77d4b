/* Reading a token through the PAM conversation, in several parts when it is long (docs/design.md §5). */
#ifndef KT_PROMPT_H
#define KT_PROMPT_H

#include <security/pam_modules.h>
#include <stddef.h>

#include "config.h"
#include "secure.h"

/* The prompt for part n >= 2; it always contains "(part N)", which k8stoken-askpass keys on. */
#define KT_PART_PROMPT "Kubernetes token (part %u): "
/* Parts asked for at most: 64 x 500 characters is twice the default max_token_size. */
#define KT_MAX_PARTS 64

/*
 * Prompts with cfg->prompt, then, while the joined answers are the unfinished start of
 * a token (kt_token_shape PARTIAL), with KT_PART_PROMPT for parts 2, 3, ... until the
 * token is complete, an answer is empty, max_token_size is passed, or KT_MAX_PARTS
 * answers were given (each part is a round trip; a client must not keep us busy). When the first
 * answer has exactly the length at which a known client cuts answers (1023: OpenSSH,
 * 511: sudo) the part-2 prompt says so. *token holds the joined answers, NUL-terminated
 * (release it with kt_secret_free); an empty or NULL first answer gives "".
 * Returns a PAM code: PAM_SUCCESS, PAM_BUF_ERR, or the conversation's failure (*token empty).
 */
int kt_prompt_token(pam_handle_t *pamh, const struct kt_config *cfg, struct kt_secret *token);

#endif
