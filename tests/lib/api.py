"""The Kubernetes API proper: authentication, authorization, discovery, objects, TokenRequest, TokenReview."""
import base64
import json
import uuid
from dataclasses import dataclass, field

import protobuf
import tokens
import wire
from authn import intersect
from clock import rfc3339
from rbac import Attributes
from authn import Response
from store import AUTHN, AUTHZ, BY_NAME, RBAC, RESOURCES, STORED, SUBRESOURCES, ordered_meta

try:
    import yaml
except ImportError:  # python3-yaml is only a convenience
    yaml = None

MAX_BODY = 3 * 1024 * 1024
YEAR = 365 * 24 * 3600
WARN_ONLY_SECONDS = 3607
GROUP_VERSIONS = {"": "v1", AUTHN: "v1", AUTHZ: "v1", RBAC: "v1"}
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
# The kinds kube-apiserver's scheme knows per group version (the part the tests can meet): a
# body of another registered kind fails conversion, one of an unregistered kind fails lookup.
META_KINDS = {"Status", "WatchEvent", "ListOptions", "GetOptions", "DeleteOptions", "CreateOptions",
              "UpdateOptions", "PatchOptions"}
SCHEME = {
    "v1": {r.kind for r in RESOURCES if not r.group} | {"ConfigMap", "Service", "Endpoints", "Event",
                                                        "Binding", "List"},
    "authentication.k8s.io/v1": {"TokenReview", "TokenRequest", "SelfSubjectReview"},
    "authentication.k8s.io/v1beta1": {"TokenReview", "SelfSubjectReview"},
    "authentication.k8s.io/v1alpha1": {"SelfSubjectReview"},
    RBAC + "/v1": {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"},
    AUTHZ + "/v1": {"SubjectAccessReview", "SelfSubjectAccessReview", "LocalSubjectAccessReview",
                    "SelfSubjectRulesReview"},
}

# Decoding schemas: field -> type tag or (Go struct name, nested fields). Only the types the
# strict decoder must check; other objects are taken as they come.
META = ("ObjectMeta", dict.fromkeys(
    ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
     "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
     "ownerReferences", "finalizers", "managedFields"), "any"))
TOKEN_REVIEW = ("TokenReview", {
    "kind": "string", "apiVersion": "string", "metadata": META,
    "spec": ("TokenReviewSpec", {"token": "string", "audiences": "[]string"}),
    "status": ("TokenReviewStatus", {"authenticated": "bool", "user": "any", "audiences": "[]string",
                                     "error": "string"})})
TOKEN_REQUEST = ("TokenRequest", {
    "kind": "string", "apiVersion": "string", "metadata": META,
    "spec": ("TokenRequestSpec", {
        "audiences": "[]string", "expirationSeconds": "int64",
        "boundObjectRef": ("BoundObjectReference", {"kind": "string", "apiVersion": "string",
                                                    "name": "string", "uid": "string"})}),
    "status": ("TokenRequestStatus", {"token": "string", "expirationTimestamp": "any"})})

# authorization.k8s.io/v1 (staging/src/k8s.io/api/authorization/v1/types.go), fields in struct order
RESOURCE_ATTRIBUTES = ("ResourceAttributes", {
    "namespace": "string", "verb": "string", "group": "string", "version": "string",
    "resource": "string", "subresource": "string", "name": "string", "fieldSelector": "any",
    "labelSelector": "any"})
NON_RESOURCE_ATTRIBUTES = ("NonResourceAttributes", {"path": "string", "verb": "string"})
ACCESS_STATUS = ("SubjectAccessReviewStatus", {"allowed": "bool", "denied": "bool", "reason": "string",
                                               "evaluationError": "string"})
SUBJECT_ACCESS_REVIEW = ("SubjectAccessReview", {
    "kind": "string", "apiVersion": "string", "metadata": META,
    "spec": ("SubjectAccessReviewSpec", {
        "resourceAttributes": RESOURCE_ATTRIBUTES, "nonResourceAttributes": NON_RESOURCE_ATTRIBUTES,
        "user": "string", "groups": "[]string", "extra": "any", "uid": "string"}),
    "status": ACCESS_STATUS})
SELF_SUBJECT_ACCESS_REVIEW = ("SelfSubjectAccessReview", {
    "kind": "string", "apiVersion": "string", "metadata": META,
    "spec": ("SelfSubjectAccessReviewSpec", {
        "resourceAttributes": RESOURCE_ATTRIBUTES, "nonResourceAttributes": NON_RESOURCE_ATTRIBUTES}),
    "status": ACCESS_STATUS})
SA_PREFIX = "system:serviceaccount:"


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict  # lower-case names
    body: bytes = b""
    peer_cert: dict = None  # SSLSocket.getpeercert() of a verified client certificate, else None


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict = field(default_factory=dict)


def wants_pretty(req):
    """negotiate.go isPrettyPrint: ?pretty=<bool>, else curl/Wget/Mozilla user agents."""
    value = req.query.get("pretty", [""])[0]
    if value:
        return value in ("1", "t", "T", "true", "TRUE", "True")
    agent = req.headers.get("user-agent", "")
    return agent.startswith(("curl", "Wget", "Mozilla/5.0"))


def json_reply(status, obj, pretty=False, headers=None):
    """kube-apiserver sends X-Content-Type-Options only with a 403 (rbac.forbidden adds it)."""
    head = {"Audit-Id": str(uuid.uuid4()), "Cache-Control": "no-cache, private",
            "Content-Type": "application/json"}
    head.update(headers or {})
    return Reply(status, wire.go_json(obj, pretty), head)


class Api:
    def __init__(self, config, store, clock, authenticator, authorizer, signing_key):
        self.config = config
        self.store = store
        self.clock = clock
        self.authn = authenticator
        self.authz = authorizer
        self.key = signing_key

    def handle(self, req):
        pretty = wants_pretty(req)
        try:
            return self._handle(req, pretty)
        except wire.ApiError as error:
            return json_reply(error.code, error.status(), pretty, error.headers)

    def authenticate(self, req):
        resp, _ = self.authn.authenticate(req.headers.get("authorization", ""), self.config.api_audiences,
                                          req.peer_cert)
        if resp is None:
            raise wire.unauthorized()
        return resp

    def _handle(self, req, pretty):
        user = self.impersonate(req, self.authenticate(req))
        info = parse_resource_path(req.path)
        if info is None:
            self.authz.check(Attributes(user.username, user.groups, req.method.lower(), req.path))
            return self._non_resource(req, pretty)
        group, version, namespace, resource, name, sub = info
        verb = VERBS.get(req.method, req.method.lower())
        if verb == "get" and not name:
            verb = "list"
        elif verb == "delete" and not name:
            verb = "deletecollection"
        self.authz.check(Attributes(user.username, user.groups, verb, req.path, True, group, resource,
                                    sub, namespace, name))
        if GROUP_VERSIONS.get(group) != version:
            raise wire.path_not_found()
        if (group, resource) == (AUTHN, "tokenreviews") and not name and not namespace:
            if verb != "create":
                raise wire.method_not_allowed()
            return self.token_review(req, namespace, pretty)
        if group == AUTHZ and resource in ("subjectaccessreviews", "selfsubjectaccessreviews") \
                and not name and not namespace:
            if verb != "create":
                raise wire.method_not_allowed()
            return self.access_review(req, user, resource == "selfsubjectaccessreviews", pretty)
        if (group, resource, sub) == ("", "serviceaccounts", "token") and name and namespace:
            if verb != "create":
                raise wire.method_not_allowed()
            return self.token_request(req, namespace, name, pretty)
        res = BY_NAME.get((group, resource))
        if res is None or res not in STORED or sub or bool(namespace) and not res.namespaced \
                and resource != "namespaces":
            raise wire.path_not_found()
        return self._crud(req, res, verb, namespace, name, pretty)

    # --- non-resource endpoints ---------------------------------------------------------------

    def _non_resource(self, req, pretty):
        path = req.path.rstrip("/") or "/"
        if req.method != "GET":
            raise wire.path_not_found()
        if path == "/version":
            # WriteRawJSON: always indented.
            return json_reply(200, self.config.version_info(), pretty=True)
        if path in ("/healthz", "/livez", "/readyz"):
            return Reply(200, b"ok", {"Content-Type": "text/plain; charset=utf-8",
                                      "X-Content-Type-Options": "nosniff"})
        if path == "/openapi/v2":
            # An empty gnostic document: kubectl finds no schema for the GVK and skips validation.
            return Reply(200, b"", {"Content-Type": "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"})
        discovery = self._discovery(path)
        if discovery is not None:
            return json_reply(200, discovery, pretty)
        if self.config.issuer.startswith("https://"):
            cache = {"Cache-Control": "public, max-age=3600"}
            if path == "/.well-known/openid-configuration":
                return json_reply(200, {
                    "issuer": self.config.issuer, "jwks_uri": self.config.url + "/openid/v1/jwks",
                    "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": [self.key.alg]}, pretty, cache)
            if path == "/openid/v1/jwks":
                # every trusted key, as kube publishes every --service-account-key-file key
                return json_reply(200, {"keys": [k.jwk() for k in self.authn.keys]}, pretty,
                                  dict(cache, **{"Content-Type": "application/jwk-set+json"}))
        raise wire.path_not_found()

    def _discovery(self, path):
        host = self.config.url.split("://", 1)[1]
        groups = [g for g in GROUP_VERSIONS if g]

        def group_entry(group):
            gv = {"groupVersion": f"{group}/v1", "version": "v1"}
            return {"name": group, "versions": [gv], "preferredVersion": gv}

        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}
        if path == "/apis":
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group_entry(g) for g in groups]}
        for group in groups:
            if path == f"/apis/{group}":
                return dict({"kind": "APIGroup", "apiVersion": "v1"}, **group_entry(group))
        for group, version in GROUP_VERSIONS.items():
            if path == (f"/apis/{group}/{version}" if group else "/api/v1"):
                resources = [r.discovery() for r in RESOURCES if r.group == group]
                resources += [e for (g, _), e in SUBRESOURCES.items() if g == group]
                head = {"kind": "APIResourceList"}
                if group:
                    head["apiVersion"] = "v1"
                return dict(head, groupVersion=f"{group}/{version}" if group else version, resources=resources)
        return None

    # --- request bodies -----------------------------------------------------------------------

    def create_options(self, req):
        """ValidateCreateOptions; returns (dry_run, field_validation)."""
        dry_run = req.query.get("dryRun", [])
        manager = req.query.get("fieldManager", [""])[0]
        validation = req.query.get("fieldValidation", [""])[0]
        errors = []
        if any(v != "All" for v in dry_run):
            errors.append(wire.FieldError("FieldValueNotSupported", "dryRun", 'supported values: "All"', dry_run))
        if len(manager) > 128:
            errors.append(wire.FieldError("FieldValueTooLong", "fieldManager", "may not be more than 128 bytes"))
        if validation not in ("", "Ignore", "Warn", "Strict"):
            errors.append(wire.FieldError("FieldValueNotSupported", "fieldValidation",
                                          'supported values: "", "Ignore", "Strict", "Warn"', validation))
        if errors:
            raise wire.invalid("CreateOptions", "meta.k8s.io", "", errors)
        return bool(dry_run), validation or "Warn"

    def decode(self, req, group_version, schema=None, validation="Warn", kind=None):
        """Body → dict; returns (obj, extra response headers). kind: the one the endpoint takes
        (from schema if not given)."""
        if len(req.body) > MAX_BODY:
            raise wire.too_large(MAX_BODY)
        media = req.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if media in ("", "application/json", "*/*"):
                obj = json.loads(req.body)
            elif media == "application/yaml" and yaml is not None:
                obj = yaml.safe_load(req.body)
            elif media == protobuf.MEDIA_TYPE:
                obj = protobuf.decode(req.body)
            else:
                raise wire.unsupported_media_type()
        except (ValueError, UnicodeDecodeError) as error:
            raise wire.bad_request(f"couldn't get version/kind; json parse error: {error}") from None
        if not isinstance(obj, dict):
            raise wire.bad_request("couldn't get version/kind; json parse error: "
                                   "json: cannot unmarshal non-object into Go value of type struct")
        kind = kind or (schema[0] if schema else None)
        if kind is not None:
            check_kind(obj, group_version, kind)
        version = obj.get("apiVersion")
        if version and version != group_version:
            raise wire.bad_request(f"the API version in the data ({version}) does not match "
                                   f"the expected API version ({group_version})")
        headers = {}
        if schema is not None:
            unknown = check_schema(obj, schema, schema[0], group_version)
            if unknown and validation == "Strict":
                raise wire.bad_request("strict decoding error: " + ", ".join(
                    f"unknown field {wire.go_quote(f)}" for f in unknown))
            if unknown and validation == "Warn":
                headers["Warning"] = ", ".join(
                    "299 - " + wire.go_quote(f"unknown field {wire.go_quote(f)}") for f in unknown)
        return obj, headers

    # --- TokenReview --------------------------------------------------------------------------

    def token_review(self, req, namespace, pretty):
        """pkg/registry/authentication/tokenreview/storage.go Create."""
        _, validation = self.create_options(req)
        obj, headers = self.decode(req, "authentication.k8s.io/v1", TOKEN_REVIEW, validation)
        spec = obj.get("spec") or {}
        token = spec.get("token") or ""
        if not token:
            raise wire.bad_request("token is required for TokenReview in authentication")
        audiences = spec.get("audiences") or []
        requested = audiences or self.config.api_audiences
        resp, error = self.authn.authenticate("Bearer " + token, requested)
        if requested and resp is not None and not intersect(requested, resp.audiences):
            raise wire.internal_error("error validating audiences")
        status = {}
        if resp is not None:
            status["authenticated"] = True
        status["user"] = resp.user_info() if resp is not None else {}
        if resp is not None and resp.audiences:
            status["audiences"] = resp.audiences
        if error:
            status["error"] = error
        meta = obj.get("metadata") or {}
        if self.config.minor < 34:  # 1.34 omits a zero creationTimestamp (omitzero)
            meta = dict({"creationTimestamp": None}, **meta)
        meta = ordered_meta(meta)
        echoed = {"token": token}
        if audiences:
            echoed["audiences"] = audiences
        review = {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "metadata": meta,
                  "spec": echoed, "status": status}
        return json_reply(201, review, pretty, headers)

    # --- impersonation and (Self)SubjectAccessReview ------------------------------------------

    def impersonate(self, req, user):
        """endpoints/filters/impersonation.go: Impersonate-User / -Group / -Uid / -Extra-*, each
        authorized as verb impersonate for the requester; the impersonated user gets its
        ServiceAccount groups (when none are given) and system:authenticated."""
        name = req.headers.get("impersonate-user", "")
        groups = [g.strip() for g in req.headers.get("impersonate-group", "").split(",") if g.strip()]
        if not name:
            if groups:
                raise wire.internal_error("requested [{Kind=Group}] without impersonating a user")
            return user
        checks = [("groups", "", g) for g in groups]
        if name.startswith(SA_PREFIX) and name.count(":") == 3:
            namespace, sa = name[len(SA_PREFIX):].split(":")
            checks.insert(0, ("serviceaccounts", namespace, sa))
            groups = groups or ["system:serviceaccounts", "system:serviceaccounts:" + namespace]
        else:
            checks.insert(0, ("users", "", name))
        for resource, namespace, target in checks:
            self.authz.check(Attributes(user.username, user.groups, "impersonate", req.path, True, "",
                                        resource, "", namespace, target))
        if name != "system:anonymous" and not {"system:authenticated", "system:unauthenticated"} & set(groups):
            groups = groups + ["system:authenticated"]
        return Response(name, groups, uid=req.headers.get("impersonate-uid", ""))

    def access_review(self, req, user, self_review, pretty):
        """pkg/registry/authorization/{subject,selfsubject}accessreview/rest.go Create."""
        _, validation = self.create_options(req)
        schema = SELF_SUBJECT_ACCESS_REVIEW if self_review else SUBJECT_ACCESS_REVIEW
        obj, headers = self.decode(req, AUTHZ + "/v1", schema, validation)
        spec = obj.get("spec") or {}
        resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if self_review:
            subject = user
        else:
            subject = Response(spec.get("user") or "", spec.get("groups") or [], uid=spec.get("uid") or "",
                               extra=spec.get("extra") or {})
        errors = []
        if resource is not None and non_resource is not None:
            errors.append(wire.FieldError("FieldValueInvalid", "spec.nonResourceAttributes",
                                          "cannot be specified in combination with resourceAttributes",
                                          GoRaw(go_struct(non_resource))))
        if resource is None and non_resource is None:
            errors.append(wire.FieldError("FieldValueInvalid", "spec.resourceAttributes",
                                          "exactly one of nonResourceAttributes or resourceAttributes "
                                          "must be specified", GoRaw("null")))
        if not self_review and not subject.username and not subject.groups:
            errors.append(wire.FieldError("FieldValueInvalid", "spec.user",
                                          "at least one of user or group must be specified", ""))
        if errors:
            raise access_invalid(errors)
        if resource is not None:
            attrs = Attributes(subject.username, subject.groups, resource.get("verb") or "", "", True,
                               resource.get("group") or "", resource.get("resource") or "",
                               resource.get("subresource") or "", resource.get("namespace") or "",
                               resource.get("name") or "")
        else:
            attrs = Attributes(subject.username, subject.groups, non_resource.get("verb") or "",
                               non_resource.get("path") or "")
        allowed, reason = self.authz.decide(attrs)
        status = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        meta = obj.get("metadata") or {}
        if self.config.minor < 34:
            meta = dict({"creationTimestamp": None}, **meta)
        review = {"kind": schema[0], "apiVersion": AUTHZ + "/v1", "metadata": ordered_meta(meta),
                  "spec": go_omitempty(spec, schema[1]["spec"]), "status": status}
        return json_reply(201, review, pretty, headers)

    # --- TokenRequest -------------------------------------------------------------------------

    def token_request(self, req, namespace, name, pretty):
        """pkg/registry/core/serviceaccount/storage/token.go Create."""
        _, validation = self.create_options(req)
        obj, headers = self.decode(req, "authentication.k8s.io/v1", TOKEN_REQUEST, validation)
        if self.store.find(BY_NAME[("", "namespaces")], "", namespace) is None:
            raise wire.not_found("namespaces", "", namespace)  # admission (NamespaceLifecycle)
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        seconds = spec.get("expirationSeconds")
        seconds = 3600 if seconds is None else seconds
        for key, want in (("name", name), ("namespace", namespace)):
            if meta.get(key) and meta[key] != want:
                raise wire.invalid("TokenRequest", AUTHN, name, [wire.FieldError(
                    "FieldValueInvalid", f"metadata.{key}",
                    f"must match the service account {key} if specified", meta[key])])
        sa = self.store.get(BY_NAME[("", "serviceaccounts")], namespace, name)
        audiences = spec.get("audiences") or list(self.config.api_audiences)
        if seconds < 600 or seconds > 2 ** 32:
            detail = ("may not specify a duration less than 10 minutes" if seconds < 600
                      else "may not specify a duration larger than 2^32 seconds")
            raise wire.invalid("TokenRequest", AUTHN, "", [wire.FieldError(
                "FieldValueInvalid", "spec.expirationSeconds", detail, seconds)])
        bound = spec.get("boundObjectRef")
        refs = self._bound_refs(bound, namespace, name) if bound else {}
        now = int(self.clock.now())
        expires = now + seconds
        warnafter = None
        if "pod" in refs and seconds == WARN_ONLY_SECONDS \
                and set(audiences) <= set(self.config.api_audiences):
            expires, warnafter = now + YEAR, now + WARN_ONLY_SECONDS
        claims = tokens.bound_claims(self.config.issuer, now, sa, audiences, expires,
                                     warnafter=warnafter, **refs)
        echoed_ref = None
        if bound:
            echoed_ref = {k: bound[k] for k in ("kind", "apiVersion", "name", "uid") if bound.get(k)}
        body = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": namespace, "uid": sa["metadata"]["uid"],
                             "creationTimestamp": rfc3339(now)},
                "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": echoed_ref},
                "status": {"token": tokens.encode(self.key, claims),
                           "expirationTimestamp": rfc3339(now + seconds)}}
        return json_reply(201, body, pretty, headers)

    def _bound_refs(self, bound, namespace, sa_name):
        """Checks a boundObjectRef; returns the pod/secret/node claims for it."""
        kind, version = bound.get("kind", ""), bound.get("apiVersion", "")
        ref_name, ref_uid = bound.get("name", ""), bound.get("uid", "")
        if version != "v1" or kind not in ("Pod", "Secret", "Node"):
            group, _, ver = version.rpartition("/")
            raise wire.bad_request(f"cannot bind token to object of type {group}/{ver}, Kind={kind}")
        res = BY_NAME[("", kind.lower() + "s")]
        obj = self.store.get(res, namespace, ref_name)
        if kind == "Pod" and (obj.get("spec") or {}).get("serviceAccountName") != sa_name:
            raise wire.bad_request(f"cannot bind token for serviceaccount {wire.go_quote(sa_name)} "
                                   "to pod running with different serviceaccount name.")
        if ref_uid and ref_uid != obj["metadata"]["uid"]:
            raise wire.conflict(kind, "", ref_name, (
                f"the UID in the bound object reference ({ref_uid}) does not match the UID in record. "
                "The object might have been deleted and then recreated"))
        if kind != "Pod":
            return {kind.lower(): tokens.ref(obj)}
        refs = {"pod": tokens.ref(obj)}
        node_name = (obj.get("spec") or {}).get("nodeName")
        if node_name:
            node = self.store.find(BY_NAME[("", "nodes")], "", node_name)
            refs["node"] = tokens.ref(node) if node else {"name": node_name}
        return refs

    # --- plain objects ------------------------------------------------------------------------

    def _crud(self, req, res, verb, namespace, name, pretty):
        if res.name == "namespaces" and name:
            namespace = ""
        if verb == "create" and not name:
            dry_run, _ = self.create_options(req)
            obj, headers = self.decode(req, res.group_version, kind=res.kind)
            body_ns = (obj.get("metadata") or {}).get("namespace")
            if res.namespaced and body_ns and body_ns != namespace:
                raise wire.bad_request("the namespace of the provided object does not match "
                                       "the namespace sent on the request")
            if res.name == "pods":
                obj.setdefault("spec", {}).setdefault("serviceAccountName", "default")
            if res.name == "secrets" and obj.get("type") == SA_TOKEN_TYPE:
                annotations = (obj.get("metadata") or {}).get("annotations") or {}
                if not annotations.get(SA_NAME_ANNOTATION):
                    raise wire.invalid("Secret", "", (obj.get("metadata") or {}).get("name", ""), [
                        wire.FieldError("FieldValueRequired", f"metadata.annotations[{SA_NAME_ANNOTATION}]", "")])
            created = self.store.create(res, namespace, obj, dry_run)
            if res.name == "secrets" and created.get("type") == SA_TOKEN_TYPE and not dry_run:
                created = self._token_controller(created)
            return json_reply(201, created, pretty, headers)
        if verb == "get":
            return json_reply(200, self.store.get(res, namespace, name), pretty)
        if verb == "list":
            items = self.store.list(res, namespace)
            for item in items:
                del item["kind"], item["apiVersion"]
            return json_reply(200, {"kind": res.kind + "List", "apiVersion": res.group_version,
                                    "metadata": {"resourceVersion": str(self.store.resource_version)},
                                    "items": items}, pretty)
        if verb == "delete":
            return json_reply(200, self.store.delete(res, namespace, name), pretty)
        raise wire.method_not_allowed()

    def _token_controller(self, secret):
        """What kube-controller-manager's token controller does to a service-account-token Secret."""
        meta = secret["metadata"]
        sa = self.store.find(BY_NAME[("", "serviceaccounts")], meta["namespace"],
                             meta["annotations"][SA_NAME_ANNOTATION])
        if sa is None:
            return secret
        meta["annotations"]["kubernetes.io/service-account.uid"] = sa["metadata"]["uid"]
        token = tokens.encode(self.key, tokens.legacy_claims(sa, meta["name"]))
        secret["data"] = {"ca.crt": base64.b64encode(self.config.ca_pem).decode(),
                          "namespace": base64.b64encode(meta["namespace"].encode()).decode(),
                          "token": base64.b64encode(token.encode()).decode()}
        self.store.replace(BY_NAME[("", "secrets")], secret)
        return secret

    def issue_token(self, namespace, name, audiences, seconds):
        """A TokenRequest-style token without going through HTTP (bootstrap)."""
        sa = self.store.get(BY_NAME[("", "serviceaccounts")], namespace, name)
        now = int(self.clock.now())
        return tokens.encode(self.key, tokens.bound_claims(self.config.issuer, now, sa, audiences, now + seconds))


def parse_resource_path(path):
    """RequestInfoFactory: (group, version, namespace, resource, name, subresource) or None for
    non-resource paths."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) == 2:
        namespace = rest[1]
    return (group, version, namespace, rest[0], rest[1] if len(rest) > 1 else "",
            "/".join(rest[2:]))


def check_kind(obj, group_version, want):
    """The decoder's kind lookup: apiVersion and kind default to the endpoint's; a kind the scheme
    knows in that version fails conversion, any other fails the lookup (both 400)."""
    version, kind = obj.get("apiVersion") or group_version, obj.get("kind") or want
    if kind == want and want in SCHEME.get(version, ()):
        return
    short = version.rsplit("/", 1)[-1]
    head = f"{kind} in version {wire.go_quote(short)} cannot be handled as a {want}: "
    if kind in SCHEME.get(version, ()) or version in SCHEME and kind in META_KINDS:
        internal = group_version.split("/")[0].split(".")[0] if "/" in group_version else "core"
        raise wire.bad_request(head + f"converting ({short}.{kind}) to ({internal}.{want}): "
                                      "unknown conversion")
    raise wire.bad_request(head + f"no kind {wire.go_quote(kind)} is registered for version "
                                  f"{wire.go_quote(version)} in scheme \"pkg/runtime/scheme.go:110\"")


GO_TYPES = {"string": str, "bool": bool, "int64": int}
JSON_TYPES = ((bool, "bool"), (str, "string"), ((int, float), "number"), (list, "array"), (dict, "object"))


def _json_type(value):
    return next(name for types, name in JSON_TYPES if isinstance(value, types))


def check_schema(obj, schema, kind, group_version, path=""):
    """Unknown fields (returned) and type errors (raised as Go's json decoder words them)."""
    struct, fields = schema
    unknown = []
    for key, value in obj.items():
        where = f"{path}.{key}" if path else key
        tag = fields.get(key)
        if tag is None:
            unknown.append(where)
        elif value is None or tag == "any":
            continue
        elif isinstance(tag, tuple):
            if not isinstance(value, dict):
                _type_error(value, struct, where, tag[0], kind, group_version)
            unknown += check_schema(value, tag, kind, group_version, where)
        elif tag == "[]string":
            if not isinstance(value, list):
                _type_error(value, struct, where, "[]string", kind, group_version)
            for item in value:
                if not isinstance(item, str):
                    _type_error(item, struct, where, "string", kind, group_version)
        elif not isinstance(value, GO_TYPES[tag]) or (tag == "int64" and isinstance(value, bool)):
            _type_error(value, struct, where, tag, kind, group_version)
    return unknown


def _type_error(value, struct, where, go_type, kind, group_version):
    version = group_version.rsplit("/", 1)[-1]
    raise wire.bad_request(f"{kind} in version {wire.go_quote(version)} cannot be handled as a {kind}: "
                           f"json: cannot unmarshal {_json_type(value)} into Go struct field "
                           f"{struct}.{where} of type {go_type}")


class GoRaw(str):
    """A value field.Error prints as it is (Go's %#v of a struct pointer or nil)."""


def go_struct(value):
    return "&" + repr(value)


def access_invalid(errors):
    """errors.NewInvalid(authorizationapi.Kind(review.Kind), "", errs): Kind is "" after decoding."""
    causes = [{"reason": e.kind, "message": _field_body(e), "field": e.field} for e in errors]
    texts = [f"{e.field}: {_field_body(e)}" for e in errors]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    return wire.ApiError(422, "Invalid", f'.{AUTHZ} "" is invalid: {joined}',
                         wire.details("", AUTHZ, "", causes))


def _field_body(error):
    if isinstance(error.value, GoRaw):
        return f"Invalid value: {error.value}: {error.detail}"
    return error.body()


def go_omitempty(value, schema):
    """A decoded struct re-encoded by Go: fields in struct order, empty omitempty ones dropped."""
    _, fields = schema
    out = {}
    for key, tag in fields.items():
        item = value.get(key)
        if item in (None, "", [], {}, False):
            continue
        out[key] = go_omitempty(item, tag) if isinstance(tag, tuple) and isinstance(item, dict) else item
    return out
