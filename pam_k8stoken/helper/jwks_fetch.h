/*
 * The helper's fetch of the cluster's key set (k8stoken-review --jwks, docs/design.md §6.3):
 * GET /.well-known/openid-configuration from the servers in order (through the circuit
 * breaker), then its jwks_uri, which must be on the same https origin as that server, or be
 * exactly the configured jwks_uri (then fetched without the reviewer's credential). The key
 * set is validated (kt_jwks_parse) and stored, sealed, in the cache directory.
 */
#ifndef KT_JWKS_FETCH_H
#define KT_JWKS_FETCH_H

#include "config.h"
#include "helper_proto.h"

/* Fills res->reason (KT_R_OK when a key set was stored) and res->detail. */
void kt_jwks_fetch(const struct kt_config *cfg, const char *bearer, struct kt_helper_result *res);

#endif
