"""Differential check of the stand-in API server (tests/apiserver) against a real
kube-apiserver (docs/kubernetes.md): one list of TokenRequest and TokenReview cases is sent to
both, with equivalent inputs (the same namespaces, names and token shapes, each side's own
objects and keys), and the replies are compared field by field. Only what must differ is
masked: uids, timestamps, the jti/credential-id value, the kid and the signature,
resourceVersions and managedFields. What the stand-in does differently on purpose is
listed in tests/apiserver/README.md ("Deliberate differences from kube-apiserver").

Kube's token success cache (10 s) is avoided, not waited out: every case reviews tokens of its
own that no earlier review has seen.

The last test holds the module to the real server: a token with an embedded newline, which
kube-apiserver accepts, is never allowed by the module."""
import base64
import hashlib
import json
import os
import re
import shutil
import tempfile
import time

import pytest

import ktest
import tokens
from cryptography.hazmat.primitives import serialization
from harness import Harness

NS = "diff"
AUD = "pam-test"
TR = ktest.TOKENREVIEWS
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
INFORMER_LAG = 2  # s: kube's token validator reads ServiceAccounts and Pods from an informer
POD_SPEC = {"containers": [{"name": "c", "image": "registry.invalid/none"}]}


# --- the two sides -------------------------------------------------------------------------

class Side:
    """One server under test: its client and a way to sign arbitrary claims with a key it trusts
    (or, other=True, with one it does not)."""

    def __init__(self, name, api, sign):
        self.name, self.api, self._sign = name, api, sign

    def sign(self, claims, other=False):
        return self._sign(claims, other)

    def get(self, path):
        status, obj = self.api.call("GET", path)
        assert status == 200, (self.name, path, status, obj)
        return obj

    def sa(self, name):
        return self.get(f"/api/v1/namespaces/{NS}/serviceaccounts/{name}")

    def create(self, path, body):
        status, obj = self.api.call("POST", path, body)
        assert status == 201, (self.name, path, status, obj)
        return obj

    def delete(self, path):
        status, obj = self.api.call("DELETE", path)
        assert status == 200, (self.name, path, status, obj)
        deadline = time.monotonic() + 30
        while self.api.call("GET", path)[0] != 404:
            assert time.monotonic() < deadline, (self.name, path, "still there")
            time.sleep(0.2)
        if self.name == "kube":
            time.sleep(INFORMER_LAG)

    def token(self, sa="user", audiences=None, seconds=None, bound=None):
        status, obj = self.api.token_request_raw(NS, sa, audiences, seconds, bound)
        assert status == 201, (self.name, status, obj)
        return obj["status"]["token"]


def key_signer(pem):
    """A tokens.SigningKey for an existing RSA private key (kube's --service-account-signing-key)."""
    key = tokens.SigningKey.__new__(tokens.SigningKey)
    key.private = serialization.load_pem_private_key(pem, None)
    key.public = key.private.public_key()
    key.alg = "RS256"
    spki = key.public.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    key.kid = tokens.b64url(hashlib.sha256(spki).digest())
    return key


def kube_side(kube):
    trusted, untrusted = key_signer(kube.signing_key()), tokens.SigningKey("rs256-2048")
    return Side("kube", kube, lambda claims, other: tokens.encode(untrusted if other else trusted, claims))


def stand_in_side(srv):
    def sign(claims, other):
        # /_test/mint with every top-level claim overridden signs exactly these claims
        name = claims["kubernetes.io"]["serviceaccount"]["name"]
        return srv.mint(namespace=NS, name=name, create_sa=False, claims_override=claims,
                        key="other" if other else "current")
    return Side("stand-in", srv, sign)


def setup_objects(side):
    """The same objects on both sides."""
    side.create("/api/v1/namespaces", {"metadata": {"name": NS}})
    for sa in ("user", "other"):
        side.create(f"/api/v1/namespaces/{NS}/serviceaccounts", {"metadata": {"name": sa}})
    for pod, sa in (("app", "user"), ("app-other", "other")):
        side.create(f"/api/v1/namespaces/{NS}/pods", {
            "metadata": {"name": pod}, "spec": dict(POD_SPEC, serviceAccountName=sa)})


@pytest.fixture(scope="module")
def stand_in(kube):
    """The stand-in as kube-apiserver is run here: the same version, issuer and API audiences,
    and --anonymous-auth=true (kube's default) as --anonymous-quirk."""
    version = kube.call("GET", "/version")[1]["gitVersion"].lstrip("v")
    tmp = tempfile.mkdtemp(prefix="kt-diff-")
    srv = ktest.ApiServer(k8s_version=version, anonymous_quirk=True)
    srv.start(os.path.join(tmp, "state"))
    yield srv
    srv.stop()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def sides(kube, stand_in):
    pair = [kube_side(kube), stand_in_side(stand_in)]
    for side in pair:
        setup_objects(side)
    return pair


# --- normalisation -------------------------------------------------------------------------

def _mask_uid(value):
    return "<uid>" if isinstance(value, str) and UUID.match(value) else value


def _claims(token):
    """Header and claims of a token with what differs per key, object or moment masked."""
    parts = token.split(".")
    header = json.loads(tokens.b64url_decode(parts[0]))
    claims = json.loads(tokens.b64url_decode(parts[1]))
    header["kid"] = "<kid>" if header.get("kid") else header.get("kid")
    iat = claims.get("iat")
    for key in ("exp", "nbf"):
        if key in claims:
            claims[key] = f"iat{claims[key] - iat:+d}"
    claims["iat"] = "<time>"
    if "jti" in claims:
        claims["jti"] = _mask_uid(claims["jti"])
    kube = claims.get("kubernetes.io") or {}
    for ref in ("serviceaccount", "pod", "secret", "node"):
        if isinstance(kube.get(ref), dict) and "uid" in kube[ref]:
            kube[ref]["uid"] = _mask_uid(kube[ref]["uid"])
    if "warnafter" in kube:
        kube["warnafter"] = f"iat{kube['warnafter'] - iat:+d}"
    return {"header": header, "claims": claims, "signature": "<signature>"}


def _meta(meta):
    out = dict(meta)
    out.pop("managedFields", None)
    for key in ("uid", "resourceVersion"):
        if key in out:
            out[key] = "<" + key + ">"
    if out.get("creationTimestamp"):
        out["creationTimestamp"] = "<time>"
    return out


def body_uid(body):
    return (json.loads(body).get("metadata") or {}).get("uid")


def normalise(reply, sent=()):
    """(status, selected headers, body) with the values that must differ masked. sent: the
    tokens this side sent, shown as <token N> where echoed."""
    status, headers, body = reply
    try:
        obj = json.loads(body)
    except ValueError:
        obj = body.decode(errors="replace")
    if isinstance(obj, dict):
        obj = json.loads(json.dumps(obj))  # a copy
        if isinstance(obj.get("metadata"), dict):
            obj["metadata"] = _meta(obj["metadata"])
        spec, stat = obj.get("spec"), obj.get("status")
        if isinstance(spec, dict) and spec.get("token") in sent:
            spec["token"] = f"<token {sent.index(spec['token'])}>"
        if isinstance(spec, dict) and isinstance(spec.get("boundObjectRef"), dict):
            ref = spec["boundObjectRef"]
            if "uid" in ref:
                ref["uid"] = _mask_uid(ref["uid"])
        if obj.get("kind") == "TokenRequest" and isinstance(stat, dict):
            if "token" in stat:
                sa_uid = json.loads(tokens.b64url_decode(stat["token"].split(".")[1]))[
                    "kubernetes.io"]["serviceaccount"]["uid"]
                if body_uid(body) == sa_uid:  # the TokenRequest carries its ServiceAccount's uid
                    obj["metadata"]["uid"] = "<serviceaccount uid>"
                stat["token"] = _claims(stat["token"])
            if stat.get("expirationTimestamp"):
                stat["expirationTimestamp"] = "<time>"
        if obj.get("kind") == "TokenReview" and isinstance(stat, dict):
            user = stat.get("user") or {}
            if "uid" in user:
                user["uid"] = _mask_uid(user["uid"])
            for key, values in (user.get("extra") or {}).items():
                if key.endswith(("/credential-id", "-uid")):
                    user["extra"][key] = [re.sub(r"^JTI=" + UUID.pattern[1:], "JTI=<jti>",
                                                 _mask_uid(v)) for v in values]
    picked = {name: headers.get(name) for name in ("content-type", "cache-control",
                                                   "x-content-type-options", "warning")}
    picked["audit-id"] = "audit-id" in headers
    return {"status": status, "headers": picked, "body": obj}


def differences(kube, stand_in, path="reply"):
    """One line per differing field, key order included."""
    if isinstance(kube, dict) and isinstance(stand_in, dict):
        out = []
        for key in list(kube) + [k for k in stand_in if k not in kube]:
            out += differences(kube.get(key, "<absent>"), stand_in.get(key, "<absent>"), f"{path}.{key}")
        if not out and list(kube) != list(stand_in):
            out.append(f"{path}: key order: kube {list(kube)}, stand-in {list(stand_in)}")
        return out
    if isinstance(kube, list) and isinstance(stand_in, list) and len(kube) == len(stand_in):
        return [d for i, (a, b) in enumerate(zip(kube, stand_in)) for d in differences(a, b, f"{path}[{i}]")]
    if kube == stand_in and type(kube) is type(stand_in):
        return []
    return [f"{path}: kube {json.dumps(kube)}, stand-in {json.dumps(stand_in)}"]


# --- cases ---------------------------------------------------------------------------------
# Each case takes a Side and returns (reply, tokens sent); reply = (status, headers, body).

def review(side, token, audiences=None, as_token=None, cert=None, path=TR, body=None):
    spec = {"token": token}
    if audiences:
        spec["audiences"] = list(audiences)
    if body is None:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
    if as_token is None and cert is None:
        as_token = side.api.reviewer_token
    headers = {"Content-Type": "application/json"}
    return side.api.request("POST", path, json.dumps(body), as_token or "", headers, cert=cert), [token]


def forge(side, sa="user", other=False, iat=0, nbf=0, exp=600, audiences=(AUD,)):
    """A bound token with times relative to now, signed by the side's own key (or another)."""
    obj = side.sa(sa)
    now = int(time.time())
    claims = tokens.bound_claims("https://kubernetes.default.svc.cluster.local", now, obj,
                                 list(audiences), now + exp)
    claims["iat"], claims["nbf"] = now + iat, now + nbf
    return side.sign(claims, other)


def insert(token, segment, offset, text):
    parts = token.split(".")
    parts[segment] = parts[segment][:offset] + text + parts[segment][offset:]
    return ".".join(parts)


def padded(token, segment):
    """The segment with standard base64 '=' padding (two when it needs none)."""
    parts = token.split(".")
    parts[segment] += "=" * (-len(parts[segment]) % 4 or 2)
    return ".".join(parts)


def token_request(side, sa="user", body=None, as_token=None, namespace=NS):
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa}/token"
    return side.api.request("POST", path, json.dumps(body if body is not None else {"spec": {}}),
                            as_token, {"Content-Type": "application/json"}), []


def deleted_sa(side):
    side.create(f"/api/v1/namespaces/{NS}/serviceaccounts", {"metadata": {"name": "gone"}})
    token = side.token("gone", [AUD])
    side.delete(f"/api/v1/namespaces/{NS}/serviceaccounts/gone")
    return review(side, token, [AUD])


def deleted_pod(side):
    side.create(f"/api/v1/namespaces/{NS}/pods", {
        "metadata": {"name": "doomed"}, "spec": dict(POD_SPEC, serviceAccountName="user")})
    token = side.token("user", [AUD], 600, {"kind": "Pod", "apiVersion": "v1", "name": "doomed"})
    side.delete(f"/api/v1/namespaces/{NS}/pods/doomed")
    return review(side, token, [AUD])


def legacy_token(side, name):
    side.create(f"/api/v1/namespaces/{NS}/secrets", {
        "metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": "user"}},
        "type": "kubernetes.io/service-account-token"})
    deadline = time.monotonic() + 60
    while True:
        data = side.get(f"/api/v1/namespaces/{NS}/secrets/{name}").get("data") or {}
        if data.get("token"):
            return base64.b64decode(data["token"]).decode()
        assert time.monotonic() < deadline, (side.name, "token controller did not fill", name)
        time.sleep(0.2)


def other_sa_token(side):
    return side.token("other", None, 600)


POD = {"kind": "Pod", "apiVersion": "v1", "name": "app"}
CASES = {
    # --- TokenReview ---
    "review-valid-audience": lambda s: review(s, s.token(audiences=[AUD]), [AUD]),
    "review-valid-default-audiences": lambda s: review(s, s.token()),
    "review-valid-default-token-asked-for-other": lambda s: review(s, s.token(), [AUD]),
    "review-valid-several-requested": lambda s: review(s, s.token(audiences=["x", AUD]), ["z", AUD, "x"]),
    "review-wrong-audience": lambda s: review(s, s.token(audiences=[AUD]), ["other"]),
    "review-pod-bound": lambda s: review(s, s.token(audiences=[AUD], bound=POD), [AUD]),
    "review-expired": lambda s: review(s, forge(s, iat=-7200, nbf=-7200, exp=-3600), [AUD]),
    "review-expired-within-leeway": lambda s: review(s, forge(s, iat=-700, nbf=-700, exp=-30), [AUD]),
    "review-not-yet-valid": lambda s: review(s, forge(s, nbf=3600, exp=7200), [AUD]),
    "review-untrusted-key": lambda s: review(s, forge(s, other=True), [AUD]),
    "review-deleted-serviceaccount": deleted_sa,
    "review-deleted-pod": deleted_pod,
    "review-legacy-secret-token": lambda s: review(s, legacy_token(s, "legacy-a")),
    "review-legacy-secret-token-audience": lambda s: review(s, legacy_token(s, "legacy-b"), [AUD]),
    "review-garbage": lambda s: review(s, "garbage", [AUD]),
    "review-three-garbage-parts": lambda s: review(s, "a.b.c", [AUD]),
    "review-json-looking": lambda s: review(s, '{"alg":"none"}.e30.', [AUD]),
    "review-empty-token": lambda s: review(s, "", [AUD]),
    "review-space-hello": lambda s: review(s, " hello", [AUD]),
    "review-space-hello-default-audiences": lambda s: review(s, " hello"),
    "review-space-hello-several-audiences": lambda s: review(s, " hello", ["b", "a"]),
    "review-leading-space-valid-token": lambda s: review(s, " " + s.token(audiences=[AUD]), [AUD]),
    "review-hello-world": lambda s: review(s, "hello world", [AUD]),
    "review-trailing-newline": lambda s: review(s, s.token(audiences=[AUD]) + "\n", [AUD]),
    "review-trailing-words": lambda s: review(s, s.token(audiences=[AUD]) + " trailing", [AUD]),
    "review-newline-in-header": lambda s: review(s, insert(s.token(audiences=[AUD]), 0, 10, "\n"), [AUD]),
    "review-newline-in-payload": lambda s: review(s, insert(s.token(audiences=[AUD]), 1, 20, "\n"), [AUD]),
    "review-cr-in-signature": lambda s: review(s, insert(s.token(audiences=[AUD]), 2, 30, "\r"), [AUD]),
    "review-crlf-in-payload": lambda s: review(s, insert(s.token(audiences=[AUD]), 1, 8, "\r\n"), [AUD]),
    "review-tab-in-payload": lambda s: review(s, insert(s.token(audiences=[AUD]), 1, 20, "\t"), [AUD]),
    "review-tab-in-signature": lambda s: review(s, insert(s.token(audiences=[AUD]), 2, 20, "\t"), [AUD]),
    "review-nbsp-in-header": lambda s: review(s, insert(s.token(audiences=[AUD]), 0, 10, "\u00a0"), [AUD]),
    "review-trailing-nel": lambda s: review(s, s.token(audiences=[AUD]) + "\u0085", [AUD]),
    "review-leading-tab": lambda s: review(s, "\t" + s.token(audiences=[AUD]), [AUD]),
    "review-large-reply": lambda s: review(s, "x" * 3000, [AUD]),
    "review-space-in-signature": lambda s: review(s, insert(s.token(audiences=[AUD]), 2, 20, " "), [AUD]),
    "review-padded-header": lambda s: review(s, padded(s.token(audiences=[AUD]), 0), [AUD]),
    "review-padded-payload": lambda s: review(s, padded(s.token(audiences=[AUD]), 1), [AUD]),
    "review-padded-signature": lambda s: review(s, padded(s.token(audiences=[AUD]), 2), [AUD]),
    "review-trailing-x1f": lambda s: review(s, s.token(audiences=[AUD]) + "\x1f", [AUD]),
    "review-x1f-in-payload": lambda s: review(s, insert(s.token(audiences=[AUD]), 1, 20, "\x1f"), [AUD]),
    "review-v1beta1-path": lambda s: review(s, s.token(audiences=[AUD]), [AUD],
                                            path="/apis/authentication.k8s.io/v1beta1/tokenreviews"),
    "review-v9-path": lambda s: review(s, "x", [AUD], as_token=s.api.admin_token,
                                       path="/apis/authentication.k8s.io/v9/tokenreviews"),
    "review-namespaced-path": lambda s: review(s, "x", [AUD],
                                               path=f"/apis/authentication.k8s.io/v1/namespaces/{NS}/tokenreviews"),
    "review-kind-not-tokenreview": lambda s: review(s, "x", body={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"token": "x"}}),
    "review-apiversion-mismatch": lambda s: review(s, "x", body={
        "apiVersion": "authentication.k8s.io/v1beta1", "kind": "TokenReview", "spec": {"token": "x"}}),
    "review-unregistered-kind": lambda s: review(s, "x", body={
        "apiVersion": "authentication.k8s.io/v1", "kind": "Foo", "spec": {"token": "x"}}),
    "review-core-kind": lambda s: review(s, "x", body={"apiVersion": "v1", "kind": "Pod", "spec": {"token": "x"}}),
    "review-core-apiversion": lambda s: review(s, "x", body={"apiVersion": "v1", "spec": {"token": "x"}}),
    "review-no-kind": lambda s: review(s, "x", body={"spec": {"token": "x"}}),
    "review-unknown-field": lambda s: review(s, "x", body={"spec": {"token": "x", "bogus": 1}}),
    "review-reviewer-without-auth-delegator": lambda s: review(s, "x", [AUD], as_token=other_sa_token(s)),
    "review-reviewer-stranger-certificate": lambda s: review(s, "x", [AUD], cert=s.api.client_cert("stranger")),
    "review-reviewer-certificate": lambda s: review(s, "garbage", [AUD], cert=s.api.client_cert("reviewer")),
    "review-no-credential": lambda s: review(s, "x", [AUD], as_token=""),
    "review-bad-credential": lambda s: review(s, "x", [AUD], as_token="not-a-token"),
    "review-get-method": lambda s: (s.api.request("GET", TR), []),
    # --- TokenRequest ---
    "request-defaults": lambda s: token_request(s),
    "request-audiences": lambda s: token_request(s, body={"spec": {"audiences": [AUD, "b"], "expirationSeconds": 600}}),
    "request-below-minimum": lambda s: token_request(s, body={"spec": {"expirationSeconds": 599}}),
    "request-above-maximum": lambda s: token_request(s, body={"spec": {"expirationSeconds": 2 ** 32 + 1}}),
    "request-missing-serviceaccount": lambda s: token_request(s, "nope"),
    "request-missing-namespace": lambda s: token_request(s, "default", namespace="nowhere"),
    "request-bound-missing-pod": lambda s: token_request(s, body={"spec": {"boundObjectRef": {
        "kind": "Pod", "apiVersion": "v1", "name": "nope"}}}),
    "request-bound-pod": lambda s: token_request(s, body={"spec": {"audiences": [AUD], "boundObjectRef": POD}}),
    "request-bound-pod-warn-only": lambda s: token_request(s, body={"spec": {"expirationSeconds": 3607,
                                                                            "boundObjectRef": POD}}),
    "request-bound-pod-other-serviceaccount": lambda s: token_request(s, body={"spec": {"boundObjectRef": {
        "kind": "Pod", "apiVersion": "v1", "name": "app-other"}}}),
    "request-bound-uid-mismatch": lambda s: token_request(s, body={"spec": {"boundObjectRef": dict(
        POD, uid="00000000-0000-0000-0000-000000000000")}}),
    "request-bound-configmap": lambda s: token_request(s, body={"spec": {"boundObjectRef": {
        "kind": "ConfigMap", "apiVersion": "v1", "name": "x"}}}),
    "request-name-mismatch": lambda s: token_request(s, body={"metadata": {"name": "other"}, "spec": {}}),
    "request-kind-tokenreview": lambda s: token_request(s, body={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {}}),
    "request-core-apiversion": lambda s: token_request(s, body={"apiVersion": "v1", "spec": {}}),
    "request-unknown-field": lambda s: token_request(s, body={"spec": {"bogus": 1}}),
    "request-by-reviewer": lambda s: token_request(s, as_token=s.api.reviewer_token),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_reply(sides, case):
    replies = {}
    for side in sides:
        reply, sent = CASES[case](side)
        replies[side.name] = normalise(reply, list(sent))
    found = differences(replies["kube"], replies["stand-in"])
    assert not found, "\n".join(found)


# --- the module against what kube-apiserver accepts -----------------------------------------

@pytest.mark.parametrize("where", ["newline-in-payload", "cr-in-signature"])
def test_module_never_allows_a_token_kube_accepts_with_whitespace_inside(kube, where, tmp_path):
    """kube-apiserver accepts a bound token with \\n or \\r inside (go-jose strips whitespace;
    the case above proves it on the real server); the module refuses it locally, before any
    review."""
    os.chmod(tmp_path, 0o755)
    h = Harness(kube, str(tmp_path))
    tok = h.token("pam", "pam-user")
    bent = insert(tok, 1, 20, "\n") if where == "newline-in-payload" else insert(tok, 2, 30, "\r")
    h.secrets.append(bent)
    assert kube.token_review(bent, [AUD])[1]["status"].get("authenticated") is True
    r = h.run("alice", bent)
    assert r.code == "PAM_AUTH_ERR", r
    assert r.decision()["reason"] == "not_jwt", r
    assert r.decision()["verdict"] == "deny", r
    h.scan_for_secrets()
