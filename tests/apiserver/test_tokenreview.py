"""TokenReview: status codes, exact bytes, error strings and validation order (docs/kubernetes.md §1, §3)."""
import json

import pytest

from ktest import TOKENREVIEWS

API_AUD = "https://kubernetes.default.svc.cluster.local"
GROUPS = ["system:serviceaccounts", "system:serviceaccounts:pam", "system:authenticated"]


def review_raw(srv, spec, token=None, query="", headers=None):
    body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec})
    head = {"Content-Type": "application/json", "User-Agent": "pam_k8stoken-test"}
    head.update(headers or {})
    return srv.request("POST", TOKENREVIEWS + query, body, token or srv.reviewer_token, head)


def error_of(srv, token, audiences=None):
    status, obj = srv.token_review(token, audiences)
    assert status == 201
    assert "authenticated" not in obj["status"] and obj["status"]["user"] == {}
    return obj["status"]["error"]


@pytest.fixture
def sa(fresh):
    fresh.call("DELETE", "/api/v1/namespaces/pam/serviceaccounts/pam-user")
    return fresh.create_sa("pam", "pam-user")


def test_invalid_token_exact_bytes(fresh):
    status, headers, body = review_raw(fresh, {"token": "somebadvalue"})
    assert status == 201
    assert headers["content-type"] == "application/json"
    assert "x-content-type-options" not in headers  # kube sends it with a 403 only
    assert body == (b'{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":'
                    b'{"creationTimestamp":null},"spec":{"token":"somebadvalue"},'
                    b'"status":{"user":{},"error":"invalid bearer token"}}\n')


def test_success_exact_shape(fresh, sa):
    token = fresh.token_request("pam", "pam-user", ["pam-test"], 600)
    status, _, body = review_raw(fresh, {"token": token, "audiences": ["other", "pam-test"]})
    assert status == 201
    jti = json.loads(body)["status"]["user"]["extra"]["authentication.kubernetes.io/credential-id"][0]
    expected = ('{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},'
                '"spec":{"token":"%s","audiences":["other","pam-test"]},"status":{"authenticated":true,'
                '"user":{"username":"system:serviceaccount:pam:pam-user","uid":"%s","groups":%s,'
                '"extra":{"authentication.kubernetes.io/credential-id":["%s"]}},"audiences":["pam-test"]}}\n'
                % (token, sa["metadata"]["uid"], json.dumps(GROUPS, separators=(",", ":")), jti))
    assert body.decode() == expected
    assert jti.startswith("JTI=") and len(jti) == 40


def test_audiences_ordered_intersection_and_default(fresh, sa):
    token = fresh.mint(namespace="pam", name="pam-user", audiences=["c", "a", "b", API_AUD])
    assert fresh.token_review(token, ["b", "x", "a"])[1]["status"]["audiences"] == ["b", "a"]
    status, obj = fresh.token_review(token)
    assert obj["status"]["audiences"] == [API_AUD] and "audiences" not in obj["spec"]


def test_pretty_for_curl_and_query(fresh):
    _, _, body = review_raw(fresh, {"token": "x"}, headers={"User-Agent": "curl/8.0"})
    assert body.startswith(b'{\n  "kind": "TokenReview",\n') and not body.endswith(b"\n")
    _, _, body = review_raw(fresh, {"token": "x"}, query="?pretty=true")
    assert body.startswith(b'{\n  "kind"')
    _, _, body = review_raw(fresh, {"token": "x"}, query="?pretty=false", headers={"User-Agent": "Mozilla/5.0"})
    assert body.endswith(b"}\n")


def test_empty_token_is_400(fresh):
    status, _, body = review_raw(fresh, {"token": ""})
    assert status == 400
    assert body == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
                    b'"token is required for TokenReview in authentication","reason":"BadRequest","code":400}\n')


def test_unauthenticated_caller_401(fresh):
    status, _, body = review_raw(fresh, {"token": "x"}, token="not-a-token")
    assert status == 401
    assert body == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
                    b'"message":"Unauthorized","reason":"Unauthorized","code":401}\n')
    assert fresh.request("POST", TOKENREVIEWS, b"{}", "")[0] == 401


def test_forbidden_caller_403(fresh):
    token = fresh.token_request("default", "default")
    status, headers, body = review_raw(fresh, {"token": "x"}, token=token)
    assert status == 403
    assert headers["x-content-type-options"] == "nosniff"
    assert body == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
                    b'"tokenreviews.authentication.k8s.io is forbidden: User \\"system:serviceaccount:default:default\\" '
                    b'cannot create resource \\"tokenreviews\\" in API group \\"authentication.k8s.io\\" at the cluster scope",'
                    b'"reason":"Forbidden","details":{"group":"authentication.k8s.io","kind":"tokenreviews"},"code":403}\n')


@pytest.mark.parametrize("spec, error", [
    ({"exp_offset": -61}, "[invalid bearer token, service account token has expired]"),
    ({"nbf_offset": 61}, "[invalid bearer token, service account token is not valid yet]"),
    ({"iat_offset": 61}, "[invalid bearer token, service account token is issued in the future]"),
    ({"key": "other"}, "[invalid bearer token, invalid signature, no keys found]"),
    ({"claims_override": {"iss": "https://elsewhere"}}, "invalid bearer token"),
    ({"audiences": ["A", "C"]},
     '[invalid bearer token, token audiences ["A" "C"] is invalid for the target audiences ["B"]]'),
    ({"claims_override": {"kubernetes.io": {"namespace": "pam", "serviceaccount": {"name": "ghost", "uid": "u"}}}},
     '[invalid bearer token, serviceaccounts "ghost" not found]'),
])
def test_error_strings(fresh, sa, spec, error):
    token = fresh.mint(namespace="pam", name="pam-user", **spec)
    assert error_of(fresh, token, ["B"] if "audiences" in spec else None) == error


def test_leeway_is_60_seconds(fresh, sa):
    assert "authenticated" in fresh.token_review(fresh.mint(namespace="pam", name="pam-user", exp_offset=-55))[1]["status"]
    assert "authenticated" in fresh.token_review(fresh.mint(namespace="pam", name="pam-user", nbf_offset=55))[1]["status"]


def test_bad_signature_same_kid(fresh, sa):
    kid = fresh.set_config()["kid"]
    token = fresh.mint(namespace="pam", name="pam-user", key="other", kid=kid)
    assert error_of(fresh, token) == "[invalid bearer token, square/go-jose: error in cryptographic primitive]"
    fresh.set_config(k8s_version="1.33.1")
    assert error_of(fresh, token) == "[invalid bearer token, go-jose/go-jose: error in cryptographic primitive]"


@pytest.mark.parametrize("garbage", ["abc", "a.b.c", "{}.e30.x", "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjF9.AA",
                                     "x" * 5000])
def test_garbage_is_plain_invalid(fresh, garbage):
    assert error_of(fresh, garbage) == "invalid bearer token"


def test_clock_shift_expires_token(fresh, sa):
    token = fresh.token_request("pam", "pam-user", ["pam"], 600)
    fresh.set_clock_offset(600 + 61)
    assert error_of(fresh, token, ["pam"]) == "[invalid bearer token, service account token has expired]"
    fresh.set_clock_offset(600 + 59)
    assert fresh.token_review(token, ["pam"])[1]["status"]["authenticated"] is True


def test_sa_uid_mismatch_and_deletion(fresh, sa):
    token = fresh.token_request("pam", "pam-user", ["pam"], 600)
    fresh.delete_sa("pam", "pam-user")
    assert error_of(fresh, token, ["pam"]) == '[invalid bearer token, serviceaccounts "pam-user" not found]'
    new = fresh.create_sa("pam", "pam-user")
    assert error_of(fresh, token, ["pam"]) == (
        f"[invalid bearer token, service account UID ({new['metadata']['uid']}) does not match claim "
        f"({sa['metadata']['uid']})]")


def test_sa_with_finalizer_deleting_beyond_leeway(fresh):
    fresh.call("POST", "/api/v1/namespaces/pam/serviceaccounts",
               {"metadata": {"name": "fin", "finalizers": ["test/keep"]}})
    token = fresh.token_request("pam", "fin", ["pam"], 3600)
    fresh.call("DELETE", "/api/v1/namespaces/pam/serviceaccounts/fin")
    assert fresh.token_review(token, ["pam"])[1]["status"]["authenticated"] is True
    fresh.set_clock_offset(61)
    assert error_of(fresh, token, ["pam"]) == "[invalid bearer token, service account pam/fin has been deleted]"


def test_pod_bound_token(fresh, sa):
    fresh.call("DELETE", "/api/v1/nodes/node-1")
    node = fresh.create_node("node-1")
    pod = fresh.create_pod("pam", "app", "pam-user", node="node-1")
    token = fresh.token_request("pam", "pam-user", ["pam"], 600, {"kind": "Pod", "apiVersion": "v1", "name": "app"})
    extra = fresh.token_review(token, ["pam"])[1]["status"]["user"]["extra"]
    assert list(extra) == sorted(extra)
    assert extra["authentication.kubernetes.io/pod-name"] == ["app"]
    assert extra["authentication.kubernetes.io/pod-uid"] == [pod["metadata"]["uid"]]
    assert extra["authentication.kubernetes.io/node-name"] == ["node-1"]
    assert extra["authentication.kubernetes.io/node-uid"] == [node["metadata"]["uid"]]
    fresh.delete_pod("pam", "app")
    assert error_of(fresh, token, ["pam"]) == "[invalid bearer token, service account token has been invalidated]"
    new = fresh.create_pod("pam", "app", "pam-user")
    assert error_of(fresh, token, ["pam"]) == (
        f"[invalid bearer token, pod UID ({new['metadata']['uid']}) does not match service account pod ref claim "
        f"({pod['metadata']['uid']})]")
    fresh.delete_pod("pam", "app")


def test_secret_and_node_bound_tokens(fresh, sa):
    fresh.call("POST", "/api/v1/namespaces/pam/secrets", {"metadata": {"name": "s1"}, "type": "Opaque"})
    token = fresh.token_request("pam", "pam-user", ["pam"], 600, {"kind": "Secret", "apiVersion": "v1", "name": "s1"})
    assert fresh.token_review(token, ["pam"])[1]["status"]["authenticated"] is True
    fresh.call("DELETE", "/api/v1/namespaces/pam/secrets/s1")
    assert error_of(fresh, token, ["pam"]) == "[invalid bearer token, service account token has been invalidated]"
    fresh.call("DELETE", "/api/v1/nodes/n2")
    fresh.create_node("n2")
    token = fresh.token_request("pam", "pam-user", ["pam"], 600, {"kind": "Node", "apiVersion": "v1", "name": "n2"})
    assert fresh.token_review(token, ["pam"])[1]["status"]["user"]["extra"]["authentication.kubernetes.io/node-name"] == ["n2"]
    fresh.call("DELETE", "/api/v1/nodes/n2")
    assert error_of(fresh, token, ["pam"]) == "[invalid bearer token, service account token has been invalidated]"


def test_legacy_secret_token(fresh, sa):
    import base64
    status, secret = fresh.call("POST", "/api/v1/namespaces/pam/secrets", {
        "metadata": {"name": "legacy", "annotations": {"kubernetes.io/service-account.name": "pam-user"}},
        "type": "kubernetes.io/service-account-token"})
    assert status == 201 and list(secret["data"]) == ["ca.crt", "namespace", "token"]
    token = base64.b64decode(secret["data"]["token"]).decode()
    status, obj = fresh.token_review(token)
    assert obj["status"]["authenticated"] is True
    assert obj["status"]["user"] == {"username": "system:serviceaccount:pam:pam-user", "uid": sa["metadata"]["uid"],
                                     "groups": GROUPS}
    assert obj["status"]["audiences"] == [API_AUD]
    fresh.set_clock_offset(300 * 86400)  # no expiry at all (the reviewer token lasts a year)
    assert fresh.token_review(token)[1]["status"]["authenticated"] is True
    forged = fresh.mint(namespace="pam", name="pam-user", legacy=True, secret="legacy", claims_override={"x": 1})
    assert error_of(fresh, forged) == "[invalid bearer token, Token does not match server's copy]"
    fresh.call("DELETE", "/api/v1/namespaces/pam/secrets/legacy")
    assert error_of(fresh, token) == "[invalid bearer token, Token has been invalidated]"


def test_admin_and_loopback_tokens(fresh):
    obj = fresh.token_review(fresh.admin_token)[1]
    assert obj["status"]["user"] == {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
    with open(fresh.state_dir + "/loopback.token") as f:
        status, obj = fresh.token_review(f.read())
    assert status == 500 and obj == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Internal error occurred: error validating audiences", "reason": "InternalError",
        "details": {"causes": [{"message": "error validating audiences"}]}, "code": 500}


def test_leading_space_quirk(fresh):
    assert fresh.token_review(" hello")[1]["status"] == {"user": {}}
    fresh.set_config(anonymous_quirk=True)
    _, _, body = review_raw(fresh, {"token": " hello"})
    assert json.loads(body)["status"] == {
        "authenticated": True, "user": {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
        "audiences": [API_AUD]}
    # the anonymous authenticator grants whatever audiences were asked for
    assert fresh.token_review(" hello", ["b", "a"])[1]["status"]["audiences"] == ["b", "a"]
    assert error_of(fresh, "hello world") == "invalid bearer token"


def test_token_whitespace_trimmed(fresh, sa):
    token = fresh.token_request("pam", "pam-user", ["pam"], 600)
    assert fresh.token_review(token + "\n", ["pam"])[1]["status"]["authenticated"] is True
    assert fresh.token_review(token + " trailing", ["pam"])[1]["status"]["authenticated"] is True


def insert(token, segment, text):
    parts = token.split(".")
    parts[segment] = parts[segment][:10] + text + parts[segment][10:]
    return ".".join(parts)


def test_whitespace_inside_a_token(fresh, sa):
    """go-jose removes every Unicode space before decoding; the issuer check before it reads the
    payload with Go's base64, which skips only \\r and \\n. \\x1f is no space to Go."""
    token = fresh.token_request("pam", "pam-user", ["pam"], 600)
    for accepted in (insert(token, 1, "\n"), insert(token, 1, "\r\n"), insert(token, 0, "\t"),
                     insert(token, 2, "\u00a0"), token + "\u0085"):
        assert fresh.token_review(accepted, ["pam"])[1]["status"]["authenticated"] is True, repr(accepted)
    for refused in (insert(token, 1, "\t"), token + "\x1f", insert(token, 2, "\x1f"), insert(token, 0, "="),
                    token + "=="):
        assert error_of(fresh, refused, ["pam"]) == "invalid bearer token", repr(refused)


def test_creation_timestamp_omitted_from_1_34(fresh):
    assert json.loads(review_raw(fresh, {"token": "x"})[2])["metadata"] == {"creationTimestamp": None}
    fresh.set_config(k8s_version="1.34.4")
    assert json.loads(review_raw(fresh, {"token": "x"})[2])["metadata"] == {}


def test_request_variants(fresh):
    body = b'{"spec":{"token":"abc"}}'
    for headers in ({}, {"Content-Type": "application/json; charset=utf-8"}):
        assert fresh.request("POST", TOKENREVIEWS, body, fresh.reviewer_token, headers)[0] == 201
    assert fresh.request("POST", TOKENREVIEWS, body, fresh.reviewer_token, {"Content-Type": "text/plain"})[0] == 415
    for query in ("?dryRun=All", "?fieldManager=pam&fieldValidation=Strict", "?fieldValidation=Ignore"):
        assert fresh.request("POST", TOKENREVIEWS + query, body, fresh.reviewer_token)[0] == 201
    status, obj = fresh.call("POST", TOKENREVIEWS + "?dryRun=Yes", body, fresh.reviewer_token)
    assert status == 422 and obj["message"] == ('CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: '
                                                '[]string{"Yes"}: supported values: "All"')
    status, obj = fresh.call("POST", TOKENREVIEWS + "?fieldValidation=Strict", b'{"spec":{"token":"a","x":1}}',
                             fresh.reviewer_token)
    assert (status, obj["message"]) == (400, 'strict decoding error: unknown field "spec.x"')
    status, headers, _ = fresh.request("POST", TOKENREVIEWS, b'{"spec":{"token":"a","x":1}}', fresh.reviewer_token)
    assert status == 201 and headers["warning"] == '299 - "unknown field \\"spec.x\\""'
    status, obj = fresh.call("POST", TOKENREVIEWS, b'{"apiVersion":"authentication.k8s.io/v1beta1","spec":{"token":"a"}}',
                             fresh.reviewer_token)
    assert (status, obj["message"]) == (400, "the API version in the data (authentication.k8s.io/v1beta1) does not "
                                             "match the expected API version (authentication.k8s.io/v1)")
    status, obj = fresh.call("POST", TOKENREVIEWS, b'{"apiVersion":"v1","spec":{"token":"a"}}', fresh.reviewer_token)
    assert (status, obj["message"]) == (400, 'TokenReview in version "v1" cannot be handled as a TokenReview: no kind '
                                             '"TokenReview" is registered for version "v1" in scheme '
                                             '"pkg/runtime/scheme.go:110"')
    status, obj = fresh.call("POST", TOKENREVIEWS, b'{"kind":"TokenRequest","spec":{"token":"a"}}', fresh.reviewer_token)
    assert (status, obj["message"]) == (400, 'TokenRequest in version "v1" cannot be handled as a TokenReview: '
                                             "converting (v1.TokenRequest) to (authentication.TokenReview): "
                                             "unknown conversion")
    status, obj = fresh.call("POST", TOKENREVIEWS, b'{"spec":{"token":5}}', fresh.reviewer_token)
    assert status == 400 and obj["message"].endswith(
        "json: cannot unmarshal number into Go struct field TokenReviewSpec.spec.token of type string")
    for path in ("/apis/authentication.k8s.io/v1/namespaces/ns1/tokenreviews",
                 "/apis/authentication.k8s.io/v1beta1/tokenreviews", "/apis/authentication.k8s.io/v9/tokenreviews",
                 "/api/v9/namespaces/default/serviceaccounts/default/token"):
        status, obj = fresh.call("POST", path, body)
        assert (status, obj["message"]) == (404, "the server could not find the requested resource"), path


def test_chunked_request_body(fresh):
    import http.client
    conn = http.client.HTTPSConnection("127.0.0.1", fresh.port, context=fresh.ssl_context())
    conn.request("POST", TOKENREVIEWS, body=iter([b'{"spec":', b'{"token":"abc"}}']),
                 headers={"Authorization": "Bearer " + fresh.reviewer_token}, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 201 and json.loads(resp.read())["status"]["error"] == "invalid bearer token"
    conn.close()
    assert fresh.requests()["last"][-1]["headers"]["transfer-encoding"] == "chunked"
