#include <stdlib.h>
#include <string.h>

#include "identity.h"

void kt_identity_free(struct kt_identity *id)
{
	if (id == NULL)
		return;
	free(id->username);
	free(id->sa_namespace);
	free(id->sa_name);
	free(id->uid);
	for (size_t i = 0; i < id->n_groups; i++)
		free(id->groups[i]);
	free(id->groups);
	free(id->credential_id);
	free(id->pod_name);
	free(id->pod_uid);
	free(id->node_name);
	memset(id, 0, sizeof(*id));
}
