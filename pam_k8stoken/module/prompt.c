#include <security/pam_ext.h>
#include <stdio.h>
#include <string.h>

#include "prompt.h"
#include "secure.h"
#include "token.h"

/* Answer lengths at which a client cuts silently: OpenSSH 1,023, sudo 511 (docs/design.md §5). */
static int cut_by_client(size_t len)
{
	return len == 1023 || len == 511;
}

/* Appends what of answer fits in buf (the joined text may exceed max by one byte). */
static void append(struct kt_secret *buf, const char *answer)
{
	size_t n = strlen(answer), room = buf->cap - 1 - buf->len;

	kt_secret_append(buf, answer, n > room ? room : n);
}

int kt_prompt_token(pam_handle_t *pamh, const struct kt_config *cfg, struct kt_secret *token)
{
	/* one byte over the limit is kept, so that the size check still sees "too long" */
	size_t max = cfg->max_token_size + 1, first_len = 0;
	char *answer = NULL;
	int rc = PAM_SUCCESS;

	if (kt_secret_alloc(token, max + 1) < 0)
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
		append(token, answer);
		kt_free_secret_str(answer);
		answer = NULL;
		if (part == 1)
			first_len = token->len;
		if (token->len >= max || part == KT_MAX_PARTS ||
		    kt_token_shape(token->p, token->len) != KT_SHAPE_PARTIAL)
			break;
	}
	kt_free_secret_str(answer);
	if (rc != PAM_SUCCESS)
		kt_secret_free(token);
	return rc;
}
