"""In-memory objects: the few resource types the tests need, with UIDs and finalizer-aware deletion."""
import copy
import random
import string
import threading
import uuid
from dataclasses import dataclass

import wire
from clock import rfc3339


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    name: str
    kind: str
    namespaced: bool
    verbs: tuple = ("create", "delete", "get", "list")
    short_names: tuple = ()

    @property
    def group_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    def discovery(self):
        """One metav1.APIResource entry."""
        entry = {"name": self.name, "singularName": self.kind.lower(), "namespaced": self.namespaced,
                 "kind": self.kind, "verbs": list(self.verbs)}
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        return entry


RBAC = "rbac.authorization.k8s.io"
AUTHN = "authentication.k8s.io"
AUTHZ = "authorization.k8s.io"
RESOURCES = [
    Resource("", "v1", "namespaces", "Namespace", False, short_names=("ns",)),
    Resource("", "v1", "nodes", "Node", False, short_names=("no",)),
    Resource("", "v1", "pods", "Pod", True, short_names=("po",)),
    Resource("", "v1", "secrets", "Secret", True),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, short_names=("sa",)),
    Resource(AUTHN, "v1", "tokenreviews", "TokenReview", False, ("create",)),
    Resource(AUTHZ, "v1", "localsubjectaccessreviews", "LocalSubjectAccessReview", True, ("create",)),
    Resource(AUTHZ, "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False, ("create",)),
    Resource(AUTHZ, "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", False, ("create",)),
    Resource(AUTHZ, "v1", "subjectaccessreviews", "SubjectAccessReview", False, ("create",)),
    Resource(RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Resource(RBAC, "v1", "clusterroles", "ClusterRole", False),
    Resource(RBAC, "v1", "rolebindings", "RoleBinding", True),
    Resource(RBAC, "v1", "roles", "Role", True),
]
SUBRESOURCES = {("", "serviceaccounts/token"): {
    "name": "serviceaccounts/token", "singularName": "", "namespaced": True, "group": AUTHN,
    "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}}
BY_NAME = {(r.group, r.name): r for r in RESOURCES}
STORED = [r for r in RESOURCES if r.name != "tokenreviews" and r.group != AUTHZ]

# ObjectMeta fields in Go struct order; the wire order follows it.
META_ORDER = ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
              "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
              "annotations", "ownerReferences", "finalizers", "managedFields")


def ordered_meta(meta):
    known = {k: meta[k] for k in META_ORDER if k in meta}
    known.update({k: v for k, v in meta.items() if k not in known})
    return known


class Store:
    def __init__(self, clock):
        self.clock = clock
        self.lock = threading.Lock()
        self.objects = {}
        self.resource_version = 1

    def _key(self, res, namespace, name):
        return (res.group, res.name, namespace if res.namespaced else "", name)

    def find(self, res, namespace, name):
        with self.lock:
            obj = self.objects.get(self._key(res, namespace, name))
            return copy.deepcopy(obj)

    def get(self, res, namespace, name):
        obj = self.find(res, namespace, name)
        if obj is None:
            raise wire.not_found(res.name, res.group, name)
        return obj

    def list(self, res, namespace=""):
        with self.lock:
            items = [copy.deepcopy(o) for k, o in sorted(self.objects.items())
                     if k[:2] == (res.group, res.name) and (not namespace or k[2] == namespace)]
        return items

    def create(self, res, namespace, obj, dry_run=False):
        """Assigns name (generateName), uid, resourceVersion, creationTimestamp; 409 if taken."""
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                random.choices(string.ascii_lowercase + string.digits, k=5))
        if not meta.get("name"):
            raise wire.invalid(res.kind, res.group, "", [wire.FieldError(
                "FieldValueRequired", "metadata.name", "name or generateName is required")])
        if res.namespaced:
            meta["namespace"] = namespace
            self.ensure_namespace(namespace)
        else:
            meta.pop("namespace", None)
        with self.lock:
            key = self._key(res, namespace, meta["name"])
            if key in self.objects:
                raise wire.already_exists(res.name, res.group, meta["name"])
            self.resource_version += 1
            meta["uid"] = str(uuid.uuid4())
            meta["resourceVersion"] = str(self.resource_version)
            meta["creationTimestamp"] = rfc3339(self.clock.now())
            obj["kind"], obj["apiVersion"] = res.kind, res.group_version
            obj = {"kind": res.kind, "apiVersion": res.group_version, "metadata": ordered_meta(meta),
                   **{k: v for k, v in obj.items() if k not in ("kind", "apiVersion", "metadata")}}
            if not dry_run:
                self.objects[key] = obj
            return copy.deepcopy(obj)

    def replace(self, res, obj):
        """Stores a changed object (controllers only: no validation)."""
        meta = obj["metadata"]
        with self.lock:
            self.objects[self._key(res, meta.get("namespace", ""), meta["name"])] = copy.deepcopy(obj)

    def delete(self, res, namespace, name):
        """Objects with finalizers only get a deletionTimestamp, as on a real cluster."""
        with self.lock:
            key = self._key(res, namespace, name)
            obj = self.objects.get(key)
            if obj is None:
                raise wire.not_found(res.name, res.group, name)
            if obj["metadata"].get("finalizers"):
                obj["metadata"].setdefault("deletionTimestamp", rfc3339(self.clock.now()))
                obj["metadata"] = ordered_meta(obj["metadata"])
            else:
                del self.objects[key]
            return copy.deepcopy(obj)

    def ensure_namespace(self, namespace):
        """Namespaces are implicit: using one creates it, with its "default" ServiceAccount."""
        res = BY_NAME[("", "namespaces")]
        if self.find(res, "", namespace) is None:
            try:
                self.create(res, "", {"metadata": {"name": namespace}})
                self.create(BY_NAME[("", "serviceaccounts")], namespace, {"metadata": {"name": "default"}})
            except wire.ApiError:
                pass  # created concurrently
