"""The request authenticator of kube-apiserver, reproduced with its exact error texts.

Shape (k8s 1.32): union(loopback-token, FailOnError(AuthenticatedGroupAdder(union(
x509(--client-ca-file), bearertoken(tokenunion(static tokens, legacy SA JWT, bound SA JWT)))), anonymous)).
The TLS layer has already verified a client certificate (CERT_OPTIONAL), so x509 only converts it.
Every authenticator answers (response, error); response None + error None = "not handled".
"""
import base64
import calendar
import hmac
import json
import time
from dataclasses import dataclass, field

import tokens
from store import BY_NAME
from wire import go_quote_list

LEEWAY = 60
INVALID_TOKEN = "invalid bearer token"
SA_PREFIX = "system:serviceaccount:"
EXTRA = "authentication.kubernetes.io/"


@dataclass
class Response:
    username: str
    groups: list
    uid: str = ""
    extra: dict = field(default_factory=dict)
    audiences: list = field(default_factory=list)

    def user_info(self):
        """authentication/v1 UserInfo with omitempty fields; extra keys sorted like a Go map."""
        info = {}
        for key, value in (("username", self.username), ("uid", self.uid), ("groups", self.groups),
                           ("extra", dict(sorted(self.extra.items())))):
            if value:
                info[key] = value
        return info


class Failure(Exception):
    """An authenticator error; its text ends up in status.error."""


def aggregate(errors):
    """utilerrors.NewAggregate(...).Error(): flattened, deduplicated, bracketed when several."""
    seen = []
    for error in errors:
        if error and error not in seen:
            seen.append(error)
    if len(seen) <= 1:
        return seen[0] if seen else None
    return "[" + ", ".join(seen) + "]"


def intersect(requested, available):
    """authenticator.Audiences.Intersect: in the order of the requested list."""
    return [aud for aud in requested if aud in available]


# Go's unicode.IsSpace (strings.TrimSpace, go-jose's stripWhitespace). Python's str.isspace()
# also counts \x1c-\x1f, which Go does not: a token ending in \x1f is refused by kube.
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200b))) \
    + "\u2028\u2029\u202f\u205f\u3000"


def go_trim_space(text):
    return text.strip(GO_SPACE)


def bearer_token(header):
    """bearertoken.go: None when the header carries no usable token."""
    parts = go_trim_space(header).split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


class Authenticator:
    def __init__(self, config, store, clock, keys):
        self.config = config
        self.store = store
        self.clock = clock
        self.keys = keys  # trusted SigningKeys

    # --- entry points -------------------------------------------------------------------------

    def authenticate(self, header, audiences, peer_cert=None):
        """(Response or None, error text or None) for an Authorization header value and the
        verified client certificate of the connection (SSLSocket.getpeercert(), or None)."""
        token = bearer_token(header or "")
        errors = []
        if token is not None and hmac.compare_digest(token.encode(), self.config.loopback_token.encode()):
            return Response("system:apiserver", ["system:masters"], uid=self.config.loopback_uid), None
        resp = x509_user(peer_cert)
        if resp is not None:
            return resp, None
        if token is not None:
            errors.append(INVALID_TOKEN)
            resp, error = self._token_union(token, audiences)
            if resp is not None:
                if "system:authenticated" not in resp.groups:
                    resp.groups = resp.groups + ["system:authenticated"]
                return resp, None
            errors.append(error or INVALID_TOKEN)
            return None, aggregate(errors)
        if self.config.anonymous_auth:
            # anonymous.go: whatever audiences were asked for, not only the API audiences
            return Response("system:anonymous", ["system:unauthenticated"],
                            audiences=list(audiences)), None
        return None, aggregate(errors)

    # --- token authenticators -----------------------------------------------------------------

    def _token_union(self, token, audiences):
        errors = []
        for authenticate in (self._static_token, self._legacy_jwt, self._bound_jwt):
            try:
                resp = authenticate(token, audiences)
            except Failure as failure:
                errors.append(str(failure))
                continue
            if resp is not None:
                return resp, None
        return None, aggregate(errors)

    def _audience_agnostic(self, resp, audiences):
        """authenticator.WrapAudienceAgnostic*: implicit audiences = the API audiences."""
        api = self.config.api_audiences
        if audiences and not intersect(audiences, api):
            return None
        resp.audiences = intersect(audiences, api) if audiences else list(api)
        return resp

    def _static_token(self, token, audiences):
        if hmac.compare_digest(token.encode(), self.config.admin_token.encode()):
            return self._audience_agnostic(Response("kubernetes-admin", ["system:masters"]), audiences)
        return None

    def _legacy_jwt(self, token, audiences):
        return self._jwt(token, audiences, [tokens.LEGACY_ISSUER], self._validate_legacy)

    def _bound_jwt(self, token, audiences):
        return self._jwt(token, audiences, [self.config.issuer], self._validate_bound)

    def _jwt(self, token, audiences, issuers, validate):
        """pkg/serviceaccount/jwt.go AuthenticateToken: hasCorrectIssuer reads the payload with
        Go's base64 (which skips \\r and \\n), then go-jose parses the token with every Unicode
        space removed and verifies the re-encoded header and payload."""
        parts = token.split(".")
        if go_trim_space(token).startswith("{") or len(parts) != 3:
            return None
        try:
            claims = json.loads(tokens.b64url_decode(parts[1].replace("\r", "").replace("\n", "")))
        except ValueError:
            return None
        if not isinstance(claims, dict) or claims.get("iss") not in issuers:
            return None
        parts = "".join(c for c in token if c not in GO_SPACE).split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(tokens.b64url_decode(parts[0]))
            claims = json.loads(tokens.b64url_decode(parts[1]))
            signature = tokens.b64url_decode(parts[2])
        except ValueError:
            return None
        if not isinstance(claims, dict) or not isinstance(header, dict):
            return None
        signed = tokens.b64url(tokens.b64url_decode(parts[0])) + "." + tokens.b64url(
            tokens.b64url_decode(parts[1]))
        kid = header.get("kid") or ""
        keys = [k for k in self.keys if not kid or k.kid == kid]
        if not keys:
            raise Failure("invalid signature, no keys found")
        failures = [k.verify(header.get("alg"), signed.encode(), signature,
                             self.config.jose_prefix()) for k in keys]
        if None not in failures:
            raise Failure(aggregate(failures))
        token_auds = claims.get("aud") or []
        if isinstance(token_auds, str):
            token_auds = [token_auds]
        if not token_auds:
            token_auds = list(self.config.api_audiences)
        granted = intersect(audiences, token_auds)
        if not granted and self.config.api_audiences:
            raise Failure(f"token audiences {go_quote_list(token_auds)} is invalid "
                          f"for the target audiences {go_quote_list(audiences)}")
        resp = validate(token, claims)
        resp.audiences = granted
        return resp

    # --- validators ---------------------------------------------------------------------------

    def _deleted_before(self, obj, limit):
        stamp = obj["metadata"].get("deletionTimestamp")
        return stamp is not None and _parse_time(stamp) < limit

    def _get(self, resource, namespace, name):
        return self.store.find(BY_NAME[("", resource)], namespace, name or "")

    def _validate_bound(self, token, claims):
        """claims.go Validate (1.30+): times with 60 s leeway, then the referenced objects."""
        now = self.clock.now()
        if _number(claims.get("nbf")) is not None and now + LEEWAY < claims["nbf"]:
            raise Failure("service account token is not valid yet")
        if _number(claims.get("exp")) is not None and now - LEEWAY > claims["exp"]:
            raise Failure("service account token has expired")
        if _number(claims.get("iat")) is not None and now + LEEWAY < claims["iat"]:
            raise Failure("service account token is issued in the future")
        deleted_before = now - LEEWAY
        kube = claims.get("kubernetes.io") or {}
        namespace = kube.get("namespace") or ""
        saref = kube.get("serviceaccount") or {}
        sa = self._get("serviceaccounts", namespace, saref.get("name"))
        if sa is None:
            raise Failure(f'serviceaccounts "{saref.get("name") or ""}" not found')
        if self._deleted_before(sa, deleted_before):
            raise Failure(f"service account {namespace}/{saref.get('name')} has been deleted")
        if sa["metadata"]["uid"] != saref.get("uid"):
            raise Failure(f"service account UID ({sa['metadata']['uid']}) does not match claim "
                          f"({saref.get('uid')})")
        extra = {}
        for kind in ("secret", "pod"):
            objref = kube.get(kind)
            if objref is None:
                continue
            obj = self._get(kind + "s", namespace, objref.get("name"))
            if obj is None or self._deleted_before(obj, deleted_before):
                raise Failure("service account token has been invalidated")
            if obj["metadata"]["uid"] != objref.get("uid"):
                raise Failure(f"{kind} UID ({obj['metadata']['uid']}) does not match service account "
                              f"{kind} ref claim ({objref.get('uid')})")
            if kind == "pod":
                extra[EXTRA + "pod-name"] = [objref["name"]]
                extra[EXTRA + "pod-uid"] = [objref["uid"]]
        noderef = kube.get("node")
        if noderef is not None:
            if kube.get("pod") is None:
                node = self._get("nodes", "", noderef.get("name"))
                if node is None or self._deleted_before(node, deleted_before):
                    raise Failure("service account token has been invalidated")
                if node["metadata"]["uid"] != noderef.get("uid"):
                    raise Failure(f"node UID ({node['metadata']['uid']}) does not match service account "
                                  f"node ref claim ({noderef.get('uid')})")
            extra[EXTRA + "node-name"] = [noderef.get("name")]
            if noderef.get("uid"):
                extra[EXTRA + "node-uid"] = [noderef["uid"]]
        if claims.get("jti"):
            extra[EXTRA + "credential-id"] = ["JTI=" + claims["jti"]]
        return _sa_response(namespace, saref.get("name"), saref.get("uid"), extra)

    def _validate_legacy(self, token, claims):
        """legacy.go Validate with --service-account-lookup=true."""
        prefix = "kubernetes.io/serviceaccount/"
        namespace = claims.get(prefix + "namespace")
        secret_name = claims.get(prefix + "secret.name")
        sa_name = claims.get(prefix + "service-account.name")
        sa_uid = claims.get(prefix + "service-account.uid")
        for value, what in ((claims.get("sub"), "sub"), (namespace, "namespace"),
                            (secret_name, "secretName"), (sa_name, "serviceAccountName"),
                            (sa_uid, "serviceAccountUID")):
            if not value:
                raise Failure(f"{what} claim is missing")
        if claims["sub"] != f"{SA_PREFIX}{namespace}:{sa_name}":
            raise Failure("sub claim is invalid")
        secret = self._get("secrets", namespace, secret_name)
        if secret is None or secret["metadata"].get("deletionTimestamp"):
            raise Failure("Token has been invalidated")
        stored = _secret_token(secret)
        if not hmac.compare_digest(stored.encode(), token.encode()):
            raise Failure("Token does not match server's copy")
        sa = self._get("serviceaccounts", namespace, sa_name)
        if sa is None:
            raise Failure(f'serviceaccounts "{sa_name}" not found')
        if sa["metadata"].get("deletionTimestamp"):
            raise Failure(f"ServiceAccount {namespace}/{sa_name} has been deleted")
        if sa["metadata"]["uid"] != sa_uid:
            raise Failure(f"ServiceAccount UID ({sa['metadata']['uid']}) does not match claim ({sa_uid})")
        if "kubernetes.io/legacy-token-invalid-since" in (secret["metadata"].get("labels") or {}):
            raise Failure(
                f"the token in secret {namespace}/{secret_name} for service account {namespace}/{sa_name} "
                "has been marked invalid. Use tokens from the TokenRequest API or manually created "
                "secret-based tokens, or remove the 'kubernetes.io/legacy-token-invalid-since' label "
                "from the secret to temporarily allow use of this token")
        return _sa_response(namespace, sa_name, sa_uid, {})


def x509_user(peer_cert):
    """x509.CommonNameUserConversion + AuthenticatedGroupAdder: CN (the last one, as Go's pkix.Name
    keeps it) is the user, each O a group.
    None (not handled) without a certificate or with an empty CN."""
    if not peer_cert:
        return None
    subject = [pair for rdn in peer_cert.get("subject", ()) for pair in rdn]
    names = [value for key, value in subject if key == "commonName"]
    if not names or not names[-1]:
        return None
    groups = [value for key, value in subject if key == "organizationName"]
    if "system:authenticated" not in groups:
        groups.append("system:authenticated")
    return Response(names[-1], groups)


def _sa_response(namespace, name, uid, extra):
    return Response(f"{SA_PREFIX}{namespace}:{name}",
                    ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"], uid=uid, extra=extra)


def _secret_token(secret):
    try:
        return base64.b64decode((secret.get("data") or {}).get("token", "")).decode()
    except (ValueError, UnicodeDecodeError):
        return ""


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _parse_time(stamp):
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))

