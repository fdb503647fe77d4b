#include <security/pam_ext.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prompt.h"
#include "secure.h"
#include "token.h"

/* Answer lengths at which a client cuts silently: OpenSSH 1,023, sudo 511 (docs/design.md §5). */
static int cut_by_client(size_t len)
{
	return len == 1023 || len == 511;
}

/* Appends answer to *buf, keeping at most cap bytes (the joined text may exceed max by one). */
static int append(char **buf, size_t *len, const char *answer, size_t cap)
{
	size_t n = strlen(answer), keep = n > cap - *len ? cap - *len : n;
	char *grown = malloc(*len + keep + 1);

	if (grown == NULL)
		return -1;
	memcpy(grown, *buf, *len);
	memcpy(grown + *len, answer, keep);
	grown[*len + keep] = '\0';
	kt_free_secret(*buf, *len + 1);
	*buf = grown;
	*len += keep;
	return 0;
}

int kt_prompt_token(pam_handle_t *pamh, const struct kt_config *cfg, char **token, size_t *len)
{
	/* one byte over the limit is kept, so that the size check still sees "too long" */
	size_t cap = cfg->max_token_size + 1, first_len = 0;
	char *buf = calloc(1, 1), *answer = NULL;
	int rc = PAM_SUCCESS;

	*token = NULL;
	*len = 0;
	if (buf == NULL)
		return PAM_BUF_ERR;
	for (unsigned part = 1;; part++) {
		if (part == 1)
			rc = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &answer, "%s", cfg->prompt);
		else if (part == 2 && cut_by_client(first_len))
			rc = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &answer,
			                "Kubernetes token (part %u) - part 1 had %zu characters, probably "
			                "cut there by your client; send the rest: ", part, first_len);
		else
			rc = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &answer, KT_PART_PROMPT, part);
		if (rc != PAM_SUCCESS)
			break;
		if (answer == NULL || answer[0] == '\0')
			break;
		if (append(&buf, len, answer, cap) < 0) {
			rc = PAM_BUF_ERR;
			break;
		}
		kt_free_secret_str(answer);
		answer = NULL;
		if (part == 1)
			first_len = *len;
		if (*len >= cap || part == KT_MAX_PARTS || kt_token_shape(buf, *len) != KT_SHAPE_PARTIAL)
			break;
	}
	kt_free_secret_str(answer);
	if (rc != PAM_SUCCESS) {
		kt_free_secret(buf, *len + 1);
		*len = 0;
		return rc;
	}
	*token = buf;
	return PAM_SUCCESS;
}
