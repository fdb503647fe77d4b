"""docs/security.md A01-A15: what the module makes of every kind of TokenReview reply.

Each case puts a reply into the test API server (fault control) and runs one real
pam_authenticate; every case asserts the exact PAM result (README "Return values") and
the exact reason of the module's decision line."""
import json
import re

import pytest

from harness import AUDIENCE

TR = "/apis/authentication.k8s.io/v1/tokenreviews"
SA = "system:serviceaccount:pam:pam-user"
GROUPS = ["system:serviceaccounts", "system:serviceaccounts:pam", "system:authenticated"]


def review(authenticated=True, username=SA, uid="8f5660ff-e115-44f9-9aeb-e060246c6860",
           groups=GROUPS, audiences=(AUDIENCE,), error=None, extra=None, drop=()):
    """A reply shaped exactly like kube-apiserver's (docs/kubernetes.md §1.5), with fields to vary."""
    user = {"username": username, "uid": uid, "groups": groups}
    if extra is not None:
        user["extra"] = extra
    status = {"authenticated": authenticated, "user": user, "audiences": list(audiences)}
    if error is not None:
        status["error"] = error
    for key in drop:
        status.pop(key, None)
        user.pop(key, None)
    return json.dumps({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                       "metadata": {"creationTimestamp": None},
                       "spec": {"token": "x", "audiences": [AUDIENCE]}, "status": status}) + "\n"


def answer_with(h, body, status=201, content_type="application/json", **kw):
    h.api.add_fault(path=TR, status=status, body=body, content_type=content_type, **kw)


def login(h, user="alice"):
    return h.run(user, h.token())


def assert_outcome(r, code, reason):
    assert r.code == code, r
    d = r.decision()
    assert d is not None, r
    assert d["reason"] == reason, r
    assert d["verdict"] == ("allow" if code == "PAM_SUCCESS" else "deny"), r


MALFORMED = ("PAM_AUTHINFO_UNAVAIL", "malformed_reply")


def test_a01_valid_reply_allows_and_request_is_exact(h):
    token = h.token()
    h.api.reset_requests()
    r = h.run("alice", token, acct=True)
    assert_outcome(r, "PAM_SUCCESS", "ok")
    assert r.acct == "PAM_SUCCESS"

    reqs = [q for q in h.api.requests()["last"] if q["path"] == TR]
    assert len(reqs) == 1
    assert reqs[0]["body"] == json.dumps(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
         "spec": {"token": token, "audiences": [AUDIENCE]}}, separators=(",", ":"))
    headers = {k.lower(): v for k, v in reqs[0]["headers"].items()}
    assert headers["authorization"] == "Bearer " + h.api.reviewer_token
    assert headers["content-type"] == "application/json"
    assert r.env["K8S_SERVICEACCOUNT"] == "pam/pam-user"
    assert r.env["K8S_USERNAME"] == SA
    assert r.env["K8S_GROUPS"].split(",") == GROUPS
    assert r.env["K8S_CREDENTIAL_ID"].startswith("JTI=")
    assert r.env["K8S_UID"]


@pytest.mark.parametrize("error", [None, "invalid bearer token"])
def test_a02_not_authenticated_denies(h, error):
    answer_with(h, review(authenticated=False, error=error, drop=("authenticated",)))
    assert_outcome(login(h), "PAM_AUTH_ERR", "unauthenticated")


def test_a02_real_invalid_token_denies(h):
    token = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], key="other")
    r = h.run("alice", token)
    assert_outcome(r, "PAM_AUTH_ERR", "unauthenticated")
    assert "invalid bearer token" in r.decision()["detail"]


@pytest.mark.parametrize("value", ["true", "false", 1, 0.0001, {}, [], None, "missing-key"])
def test_a03_authenticated_must_be_a_boolean(h, value):
    body = review()
    obj = json.loads(body)
    if value == "missing-key":
        del obj["status"]["authenticated"]
        answer_with(h, json.dumps(obj))
        assert_outcome(login(h), "PAM_AUTH_ERR", "unauthenticated")  # omitted when false
        return
    obj["status"]["authenticated"] = value
    answer_with(h, json.dumps(obj))
    assert_outcome(login(h), *MALFORMED)


@pytest.mark.parametrize("audiences", [None, [], ["https://kubernetes.default.svc"],
                                       ["pam-test-evil"], ["PAM-TEST"], ["pam-test "],
                                       ["pam-"], [""], ["pam-tes"], ["", "pam-"]])
def test_a04_audience_must_come_back(h, audiences):
    """Only an exact configured audience counts: a proper prefix of ours ("pam-"), the
    empty audience, a longer one or another case are refused."""
    body = review(drop=("audiences",)) if audiences is None else review(audiences=audiences)
    answer_with(h, body)
    assert_outcome(login(h), "PAM_AUTH_ERR", "audience_mismatch")


def test_a04_audience_intersection_allows(h):
    answer_with(h, review(audiences=["x", AUDIENCE]))
    assert_outcome(login(h), "PAM_SUCCESS", "ok")


@pytest.mark.parametrize("token_audience", ["pam-", ""])
def test_a04_token_for_a_prefix_audience_is_refused_end_to_end(h, token_audience):
    """A real token minted for "pam-" (or for the empty audience), reviewed by the test
    API server for our audience "pam-test": refused, never allowed."""
    token = h.mint(namespace="pam", name="pam-user", audiences=[token_audience])
    r = h.run("alice", token)
    assert_outcome(r, "PAM_AUTH_ERR", "unauthenticated")
    assert "invalid bearer token" in r.decision()["detail"]


NOT_SA = ("PAM_AUTH_ERR", "not_serviceaccount")


@pytest.mark.parametrize("username,outcome", [
    ("kubernetes-admin", NOT_SA), ("system:node:n1", NOT_SA), ("system:bootstrap:abc", NOT_SA),
    ("oidc:jane", NOT_SA), ("system:anonymous", NOT_SA), ("system:serviceaccount:pam", NOT_SA),
    ("system:serviceaccount:a:b:c", NOT_SA), ("system:serviceaccount::pam-user", NOT_SA),
    ("system:serviceaccount:pam:", NOT_SA), ("system:serviceaccount:PAM:pam-user", NOT_SA),
    ("system:serviceaccount:pam:" + "a" * 300, NOT_SA),
    ("system:serviceaccount:pam:pam-user\n", NOT_SA),
    ("system:serviceaccount:pam:pam-user\u0000evil", MALFORMED),
    ("system:serviceaccount:pam:s\u00e1", NOT_SA),
    ("system:serviceaccounts:pam:pam-user", NOT_SA),    # the group prefix, not the user's
    ("system:serviceaccount;pam:pam-user", NOT_SA),
    ("System:serviceaccount:pam:pam-user", NOT_SA),
])

def test_a05_only_serviceaccount_usernames(h, username, outcome):
    answer_with(h, review(username=username))
    assert_outcome(login(h), *outcome)


BAD_IDENTITY = ("PAM_AUTH_ERR", "bad_identity")


@pytest.mark.parametrize("change,outcome", [
    ({"uid": ""}, BAD_IDENTITY), ({"drop": ("uid",)}, BAD_IDENTITY),
    ({"groups": ["system:serviceaccounts", "system:authenticated"]}, BAD_IDENTITY),
    ({"groups": ["system:serviceaccounts:other"]}, BAD_IDENTITY),
    ({"drop": ("groups",)}, BAD_IDENTITY),
    ({"uid": None}, MALFORMED), ({"uid": 42}, MALFORMED),
    ({"groups": "system:serviceaccounts:pam"}, MALFORMED),
])
def test_a06_uid_and_namespace_group_required(h, change, outcome):
    answer_with(h, review(**change))
    assert_outcome(login(h), *outcome)


@pytest.mark.parametrize("mutate", ["status-object", "kind", "apiVersion"])
def test_a07_only_tokenreview_objects(h, mutate):
    if mutate == "status-object":
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Failure", "message": "x", "reason": "Forbidden", "code": 403})
    else:
        obj = json.loads(review())
        obj[mutate] = {"kind": "SubjectAccessReview", "apiVersion": "authentication.k8s.io/v1beta9"}[mutate]
        body = json.dumps(obj)
    answer_with(h, body, status=200)
    assert_outcome(login(h), *MALFORMED)


@pytest.mark.parametrize("body", [
    review() + "garbage", review() + review(), review().rstrip("\n") + "\u0000garbage",
    review()[:-20], "", "{",
])
def test_a08_whole_body_must_be_one_document(h, body):
    answer_with(h, body)
    assert_outcome(login(h), *MALFORMED)


@pytest.mark.parametrize("body", [
    review().replace('{"kind"', '/* c */ {"kind"', 1),
    review().replace("true", "True", 1),
    review().replace('"audiences": ["pam-test"]}', '"audiences": ["pam-test"],}', 1),
    review().replace('"kind": "TokenReview"', "'kind': 'TokenReview'", 1),
    review().replace('"authenticated": true', '"authenticated": true, "x": NaN', 1),
])
def test_a09_only_strict_json(h, body):
    answer_with(h, body)
    assert_outcome(login(h), *MALFORMED)


@pytest.mark.parametrize("depth,outcome", [
    (33, MALFORMED), (1000, MALFORMED),
    (100000, ("PAM_AUTHINFO_UNAVAIL", "reply_too_large")),   # 200 KB: over the cap first
])
def test_a10_deep_nesting(h, depth, outcome):
    body = '{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","x":' + \
        "[" * depth + "]" * depth + ',"status":{"authenticated":true}}'
    answer_with(h, body)
    assert_outcome(login(h), *outcome)


def test_a10_huge_group_array(h):

    groups = '"g",' * 400000  # 1.6 MB, 25 times the cap (the control API takes 3 MiB)
    body = review().replace('"groups": [', '"groups": [' + groups, 1)
    answer_with(h, body)
    assert_outcome(login(h), "PAM_AUTHINFO_UNAVAIL", "reply_too_large")


@pytest.mark.parametrize("chunked,size", [(False, 64 * 1024 + 1), (True, 64 * 1024 + 1),
                                          (True, 1024 ** 3)])
def test_a11_reply_size_capped(h, chunked, size):
    h.api.add_fault(path=TR, status=201, content_type="application/json", chunked=chunked,
                    body_size=size)
    r = login(h)
    # cut at the cap, not read to the end: 1 GiB would take longer than the deadline,
    # which would end it with reason timeout instead
    assert_outcome(r, "PAM_AUTHINFO_UNAVAIL", "reply_too_large")
    print(f"\nFIGURE reply cap chunked={chunked} size={size}: {r.decision()['ms']} ms")


def test_a11_reply_of_exactly_the_cap_is_read(h):
    """64 KiB is allowed, one byte more is too large (above): the cap is exact."""
    body = review()
    pad = 64 * 1024 - len(body.encode())
    body = body.replace('"metadata": {', '"metadata": {"x": "' + "p" * (pad - 9) + '", ', 1)
    assert len(body.encode()) == 64 * 1024
    answer_with(h, body)
    assert_outcome(login(h), "PAM_SUCCESS", "ok")


@pytest.mark.parametrize("where", ["username", "groups"])
def test_a12_invalid_utf8(h, where):
    raw = review().encode()
    target = b"pam-user" if where == "username" else b"system:authenticated"
    raw = raw.replace(target, target[:-1] + b"\xc3\x28", 1)
    h.api.add_fault(path=TR, status=201, body_b64=__import__("base64").b64encode(raw).decode(),
                    content_type="application/json")
    assert_outcome(login(h), *MALFORMED)


@pytest.mark.parametrize("first,second", [("true", "false"), ("false", "true")])
def test_a13_duplicate_keys_never_allow_a_false(h, first, second):
    """Both orders, each served once (times=1: the test API server serves the first
    matching fault, so a second fault added after it would never be reached)."""
    body = review(authenticated=first == "true").replace(
        f'"authenticated": {first}', f'"authenticated": {first}, "authenticated": {second}', 1)
    assert body.count('"authenticated"') == 2
    answer_with(h, body, times=1)
    h.api.reset_requests()
    assert_outcome(login(h), *MALFORMED)
    assert h.api.requests()["counts"].get(TR, 0) == 1
    # the fault is used up: the next login gets the real server's answer
    assert_outcome(login(h), "PAM_SUCCESS", "ok")


def test_a13_duplicate_username_key(h):
    body = review().replace('"username": "system:serviceaccount:pam:pam-user"',
                            '"username": "system:serviceaccount:pam:pam-user", '
                            '"username": "system:serviceaccount:kube-system:admin"', 1)
    answer_with(h, body, times=1)
    assert_outcome(login(h), *MALFORMED)


@pytest.mark.parametrize("status,reason", [
    (204, "http_status"), (301, "redirect_refused"), (302, "redirect_refused"),
    (400, "http_status"), (401, "reviewer_rejected"), (403, "reviewer_rejected"),
    (404, "http_status"), (409, "http_status"), (413, "http_status"), (415, "http_status"),
    (422, "http_status"), (429, "http_status"), (500, "http_status"), (502, "http_status"),
    (503, "http_status"), (504, "http_status"),
])
def test_a14_http_status_matrix(h, status, reason):
    answer_with(h, review(), status=status)
    r = login(h)
    assert_outcome(r, "PAM_AUTHINFO_UNAVAIL", reason)
    assert re.search(r"^syslog 3 pam_k8stoken\S* deny ", r.log, re.M)  # LOG_ERR: operators must see these


def test_a14_200_is_accepted(h):
    answer_with(h, review(), status=200)
    assert_outcome(login(h), "PAM_SUCCESS", "ok")


def test_a15_html_from_a_load_balancer(h):
    answer_with(h, review(), status=200, content_type="text/html")
    assert_outcome(login(h), *MALFORMED)
