/* The ServiceAccount identity a successful TokenReview vouches for. */
#ifndef KT_IDENTITY_H
#define KT_IDENTITY_H

#include <stddef.h>

#define KT_MAX_GROUPS 256

struct kt_identity {
	char *username;       /* system:serviceaccount:NS:NAME */
	char *sa_namespace;   /* NS */
	char *sa_name;        /* NAME */
	char *uid;            /* ServiceAccount UID */
	char **groups;
	size_t n_groups;
	char *credential_id;  /* extra authentication.kubernetes.io/credential-id, or NULL */
	char *pod_name;       /* extra .../pod-name, or NULL */
	char *pod_uid;        /* extra .../pod-uid, or NULL */
	char *node_name;      /* extra .../node-name, or NULL */
};

void kt_identity_free(struct kt_identity *id);

#endif
