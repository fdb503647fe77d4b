"""TokenRequest: defaults, limits, bound objects, exact claims and token sizes (docs/kubernetes.md §2, §4, §8)."""
import base64
import json

import pytest

from ktest import ApiServer
from tokens import b64url_decode

API_AUD = "https://kubernetes.default.svc.cluster.local"


def parts(token):
    header, payload, signature = token.split(".")
    return b64url_decode(header), b64url_decode(payload), signature


def test_response_shape_and_claims(fresh):
    fresh.call("DELETE", "/api/v1/namespaces/pam/serviceaccounts/pam-user")
    sa = fresh.create_sa("pam", "pam-user")
    status, obj = fresh.token_request_raw("pam", "pam-user", ["pam-test"], 600)
    assert status == 201
    assert list(obj) == ["kind", "apiVersion", "metadata", "spec", "status"]
    assert list(obj["metadata"]) == ["name", "namespace", "uid", "creationTimestamp"]
    assert obj["metadata"]["uid"] == sa["metadata"]["uid"]  # the ServiceAccount's, as on kube
    assert obj["spec"] == {"audiences": ["pam-test"], "expirationSeconds": 600, "boundObjectRef": None}
    header, payload, _ = parts(obj["status"]["token"])
    assert header == b'{"alg":"RS256","kid":"%s"}' % fresh.set_config()["kid"].encode()
    claims = json.loads(payload)
    assert list(claims) == ["aud", "exp", "iat", "iss", "jti", "kubernetes.io", "nbf", "sub"]
    assert payload == json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
    assert claims["exp"] - claims["iat"] == 600 and claims["nbf"] == claims["iat"]
    assert claims["kubernetes.io"] == {"namespace": "pam", "serviceaccount": {"name": "pam-user",
                                                                              "uid": sa["metadata"]["uid"]}}
    assert claims["sub"] == "system:serviceaccount:pam:pam-user" and claims["iss"] == API_AUD
    assert obj["status"]["expirationTimestamp"].endswith("Z")


def test_missing_namespace_is_admission_404(fresh):
    status, obj = fresh.token_request_raw("nowhere", "default", seconds=1)
    assert (status, obj["message"]) == (404, 'namespaces "nowhere" not found')


def test_body_of_another_kind(fresh):
    path = "/api/v1/namespaces/default/serviceaccounts/default/token"
    status, obj = fresh.call("POST", path, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview"})
    assert (status, obj["message"]) == (400, 'TokenReview in version "v1" cannot be handled as a TokenRequest: '
                                             "converting (v1.TokenReview) to (authentication.TokenRequest): "
                                             "unknown conversion")


def test_defaults(fresh):
    status, obj = fresh.call("POST", "/api/v1/namespaces/default/serviceaccounts/default/token", {})
    assert status == 201
    assert obj["spec"] == {"audiences": [API_AUD], "expirationSeconds": 3600, "boundObjectRef": None}


def test_too_short_is_422(fresh):
    status, _, body = fresh.request("POST", "/api/v1/namespaces/default/serviceaccounts/default/token",
                                    {"spec": {"expirationSeconds": 599}})
    assert status == 422
    assert body == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
                    b'"TokenRequest.authentication.k8s.io \\"\\" is invalid: spec.expirationSeconds: Invalid value: 599: '
                    b'may not specify a duration less than 10 minutes","reason":"Invalid","details":'
                    b'{"group":"authentication.k8s.io","kind":"TokenRequest","causes":[{"reason":"FieldValueInvalid",'
                    b'"message":"Invalid value: 599: may not specify a duration less than 10 minutes",'
                    b'"field":"spec.expirationSeconds"}]},"code":422}\n')


def test_missing_sa_404_and_name_mismatch_422(fresh):
    status, obj = fresh.token_request_raw("default", "nobody", ["a"], 600)
    assert (status, obj["message"]) == (404, 'serviceaccounts "nobody" not found')
    status, obj = fresh.call("POST", "/api/v1/namespaces/default/serviceaccounts/default/token",
                             {"metadata": {"name": "other"}, "spec": {}})
    assert status == 422 and obj["message"].endswith(
        'metadata.name: Invalid value: "other": must match the service account name if specified')


def test_bound_object_errors(fresh):
    fresh.call("DELETE", "/api/v1/namespaces/default/pods/p-other")
    fresh.create_pod("default", "p-other", "someone-else")
    status, obj = fresh.token_request_raw("default", "default", None, None, {"kind": "Pod", "apiVersion": "v1", "name": "p-other"})
    assert (status, obj["message"]) == (400, 'cannot bind token for serviceaccount "default" to pod running with '
                                             'different serviceaccount name.')
    status, obj = fresh.token_request_raw("default", "default", None, None, {"kind": "Pod", "apiVersion": "v1", "name": "nope"})
    assert (status, obj["message"]) == (404, 'pods "nope" not found')
    status, obj = fresh.token_request_raw("default", "default", None, None, {"kind": "ConfigMap", "apiVersion": "v1", "name": "x"})
    assert (status, obj["message"]) == (400, "cannot bind token to object of type /v1, Kind=ConfigMap")
    fresh.call("DELETE", "/api/v1/namespaces/default/pods/p1")
    fresh.create_pod("default", "p1", "default")
    status, obj = fresh.token_request_raw("default", "default", None, None,
                                          {"kind": "Pod", "apiVersion": "v1", "name": "p1", "uid": "wrong"})
    assert status == 409 and obj["reason"] == "Conflict" and "(wrong) does not match the UID in record" in obj["message"]


def test_pod_token_warn_only_extension(fresh):
    fresh.call("DELETE", "/api/v1/namespaces/default/pods/p2")
    fresh.create_pod("default", "p2", "default")
    status, obj = fresh.token_request_raw("default", "default", None, 3607, {"kind": "Pod", "apiVersion": "v1", "name": "p2"})
    claims = json.loads(parts(obj["status"]["token"])[1])
    assert claims["exp"] - claims["iat"] == 365 * 86400
    assert claims["kubernetes.io"]["warnafter"] - claims["iat"] == 3607


# docs/kubernetes.md §8: exact lengths with the default issuer and 36-character UUIDs.
def sizes(srv):
    for name in ("my-app-5d9c7b6f4-x2x7k", "pam-user"):
        srv.call("DELETE", f"/api/v1/namespaces/pam/pods/{name}")
    srv.call("DELETE", "/api/v1/namespaces/pam/serviceaccounts/pam-user")
    srv.call("DELETE", "/api/v1/nodes/kind-worker")
    srv.call("DELETE", "/api/v1/namespaces/default/serviceaccounts/build-robot")
    srv.call("DELETE", "/api/v1/namespaces/default/secrets/build-robot-secret")
    srv.create_sa("pam", "pam-user")
    srv.create_sa("default", "build-robot")
    srv.create_node("kind-worker")  # an 11-character node name, as kind's, gives the facts' 1174
    srv.create_pod("default", "my-app-5d9c7b6f4-x2x7k", "default", node="kind-worker")
    status, obj = srv.call("POST", "/api/v1/namespaces/default/secrets", {
        "metadata": {"name": "build-robot-secret", "annotations": {"kubernetes.io/service-account.name": "build-robot"}},
        "type": "kubernetes.io/service-account-token"})
    return {
        "default": len(srv.token_request("default", "default")),
        "pam": len(srv.token_request("pam", "pam-user", ["pam-test"], 600)),
        "pod": len(srv.token_request("default", "default", None, 3607,
                                     {"kind": "Pod", "apiVersion": "v1", "name": "my-app-5d9c7b6f4-x2x7k"})),
        "legacy": len(base64.b64decode(obj["data"]["token"])),
    }


def test_token_sizes_rs256_2048(fresh):
    size = sizes(fresh)
    assert size == {"default": 930, "pam": 874, "pod": 1174, "legacy": 909}


@pytest.mark.parametrize("key, delta", [("rs256-4096", 341), ("es256", -256)])
def test_token_sizes_other_keys(tmp_path, key, delta):
    with ApiServer().start(str(tmp_path), key=key) as srv:
        size = sizes(srv)
        header = json.loads(parts(srv.token_request("default", "default"))[0])
        jwks = srv.call("GET", "/openid/v1/jwks")[1]
    assert size == {"default": 930 + delta, "pam": 874 + delta, "pod": 1174 + delta, "legacy": 909 + delta}
    assert header == {"alg": key[:5].upper(), "kid": jwks["keys"][0]["kid"]}
