"""Authorization: system:masters, then RBAC (plugin/pkg/auth/authorizer/rbac) rule evaluation."""
from dataclasses import dataclass

import wire
from store import BY_NAME, RBAC


@dataclass
class Attributes:
    """authorizer.Attributes of one request."""
    username: str
    groups: list
    verb: str
    path: str
    resource_request: bool = False
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


def _has(values, wanted):
    return "*" in values or wanted in values


def _resource_matches(rule_resources, resource, subresource):
    combined = f"{resource}/{subresource}" if subresource else resource
    return any(r in ("*", combined) or (subresource and r == "*/" + subresource) for r in rule_resources)


def _url_matches(rule_urls, path):
    return any(u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1])) for u in rule_urls)


def rule_allows(rule, attrs):
    if not _has(rule.get("verbs") or [], attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule.get("nonResourceURLs") or [], attrs.path)
    names = rule.get("resourceNames") or []
    return (_has(rule.get("apiGroups") or [], attrs.group)
            and _resource_matches(rule.get("resources") or [], attrs.resource, attrs.subresource)
            and (not names or attrs.name in names))


def subject_matches(subject, attrs, binding_namespace=""):
    """appliesToUser: a ServiceAccount subject without a namespace is the binding's own."""
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == attrs.username
    if kind == "Group":
        return name in attrs.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return attrs.username == f"system:serviceaccount:{namespace}:{name}"
    return False


def describe(binding, subject, namespace):
    """rbac/rule.go clusterRoleBindingDescriber / roleBindingDescriber String()."""
    q = wire.go_quote
    name, ref = binding["metadata"]["name"], binding.get("roleRef") or {}
    if subject.get("kind") == "ServiceAccount":
        who = "ServiceAccount " + q(subject.get("name", "") + "/" + (subject.get("namespace") or namespace))
    else:
        who = f"{subject.get('kind')} {q(subject.get('name', ''))}"
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"
    shown = f"{name}/{namespace}" if namespace else name
    return f"{kind} {q(shown)} of {ref.get('kind')} {q(ref.get('name', ''))} to {who}"


class Authorizer:
    def __init__(self, store):
        self.store = store

    def _rules(self, role_ref, namespace):
        kind = role_ref.get("kind")
        if kind == "ClusterRole":
            role = self.store.find(BY_NAME[(RBAC, "clusterroles")], "", role_ref.get("name"))
        elif kind == "Role" and namespace:
            role = self.store.find(BY_NAME[(RBAC, "roles")], namespace, role_ref.get("name"))
        else:
            role = None
        return (role or {}).get("rules") or []

    def allowed(self, attrs):
        return self.decide(attrs)[0]

    def decide(self, attrs):
        """(allowed, reason) as the union authorizer answers: system:masters (the privileged
        group authorizer, no reason), then RBAC's visitor, which names the first binding that
        allows; a denial carries no reason (Node and RBAC have no opinion)."""
        if "system:masters" in attrs.groups:
            return True, ""
        bindings = [(b, "") for b in self.store.list(BY_NAME[(RBAC, "clusterrolebindings")])]
        if attrs.resource_request and attrs.namespace:
            bindings += [(b, attrs.namespace)
                         for b in self.store.list(BY_NAME[(RBAC, "rolebindings")], attrs.namespace)]
        for binding, namespace in bindings:
            subject = next((s for s in binding.get("subjects") or [] if subject_matches(s, attrs, namespace)),
                           None)
            if subject is not None \
                    and any(rule_allows(r, attrs) for r in self._rules(binding.get("roleRef") or {}, namespace)):
                return True, "RBAC: allowed by " + describe(binding, subject, namespace)
        return False, ""

    def check(self, attrs):
        if not self.allowed(attrs):
            raise forbidden(attrs)


NOSNIFF = {"X-Content-Type-Options": "nosniff"}  # responsewriters.Forbidden, and only there


def forbidden(attrs):
    """responsewriters.ForbiddenStatusError + errors.NewForbidden."""
    user = wire.go_quote(attrs.username)
    if not attrs.resource_request:
        message = f"forbidden: User {user} cannot {attrs.verb} path {wire.go_quote(attrs.path)}"
        return wire.ApiError(403, "Forbidden", message, {}, NOSNIFF)
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    scope = (f" in the namespace {wire.go_quote(attrs.namespace)}" if attrs.namespace
             else " at the cluster scope")
    why = (f"User {user} cannot {attrs.verb} resource {wire.go_quote(resource)} "
           f"in API group {wire.go_quote(attrs.group)}{scope}")
    target = wire.qualified(attrs.resource, attrs.group)
    if attrs.name:
        target += " " + wire.go_quote(attrs.name)
    return wire.ApiError(403, "Forbidden", f"{target} is forbidden: {why}",
                         wire.details(attrs.name, attrs.group, attrs.resource), NOSNIFF)
