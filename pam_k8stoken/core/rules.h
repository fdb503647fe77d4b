/* Mapping rules: may this ServiceAccount identity act as this local account? */
#ifndef KT_RULES_H
#define KT_RULES_H

#include <stddef.h>

#include "config.h"
#include "identity.h"
#include "reason.h"

/*
 * Parses the words after "map"/"deny" on one config line into *rule
 * ("serviceaccount:NS-GLOB/NAME-GLOB [TEMPLATE]" or "group:GLOB [TEMPLATE]").
 * Validates globs and the template. Error text (without file/line) goes to err.
 */
enum kt_reason kt_rule_parse(struct kt_rule *rule, enum kt_rule_action action,
                             const char *text, char *err, size_t errlen);
void kt_rule_free(struct kt_rule *rule);

/*
 * Order-independent decision: KT_R_OK iff no deny rule matches the identity and at
 * least one map rule matches it and renders exactly pam_user; else KT_R_DENY_RULE or
 * KT_R_NOT_MAPPED. *matched_line (may be NULL) gets the deciding rule's line, 0 if none.
 */
enum kt_reason kt_rules_decide(const struct kt_rule *rules, size_t n_rules,
                               const struct kt_identity *id, const char *pam_user,
                               unsigned *matched_line);

/* True when name is a sane local account name: [a-z_][a-z0-9_.-]{0,31}, optional trailing $. */
int kt_valid_local_name(const char *name);

#endif
