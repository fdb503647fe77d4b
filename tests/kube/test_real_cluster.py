"""The module against a real kube-apiserver (etcd, kube-apiserver and kube-controller-manager
built by `make kube`): the seed flows with the real kubectl, and the module's decisions through
the real libpam driver, each asserted by its PAM code and the reason of the decision line.

Revocation delays are measured, not assumed: kube-apiserver remembers a successful token
authentication for 10 s (docs/kubernetes.md §10), so a deleted ServiceAccount, Pod or Secret is
refused only after that plus our cache_ttl. The tests print the measured delays."""
import base64
import hashlib
import json
import os
import subprocess
import tempfile
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

import cluster
from harness import AUDIENCE

KUBECTL = "/usr/bin/kubectl"
# kube-apiserver's success cache (10 s) plus a margin for a loaded machine
KUBE_AUTH_CACHE = 10


def kubectl(kube, *args, stdin=None, check=True):
    """The real kubectl with the cluster's kubeconfig and a HOME of its own (the dispatcher
    caches /version under $HOME/.kube)."""
    home = tempfile.mkdtemp(prefix="kt-kubectl-")
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "KUBECONFIG": kube.kubeconfig}
    proc = subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=120)
    if check:
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc


def expect(r, code, reason, **fields):
    d = r.decision()
    assert d is not None, r
    assert (r.code, d["reason"]) == (code, reason), r
    for key, value in fields.items():
        assert d.get(key) == value, (key, d)
    return d


def sa_uid(kube, ns, name):
    status, obj = kube.call("GET", f"/api/v1/namespaces/{ns}/serviceaccounts/{name}")
    assert status == 200, obj
    return obj["metadata"]["uid"]


def signed_token(kube, ns, name, iat, exp, nbf=None, audiences=(AUDIENCE,)):
    """A token signed with the cluster's own ServiceAccount key, with the claims and key id
    kube-apiserver puts into the tokens it issues (docs/kubernetes.md §4)."""
    key = serialization.load_pem_private_key(kube.signing_key(), None)
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    claims = {"aud": list(audiences), "exp": int(exp), "iat": int(iat),
              "nbf": int(iat if nbf is None else nbf), "iss": cluster.ISSUER,
              "jti": "00000000-0000-4000-8000-000000000001",
              "kubernetes.io": {"namespace": ns, "serviceaccount": {
                  "name": name, "uid": sa_uid(kube, ns, name)}},
              "sub": f"system:serviceaccount:{ns}:{name}"}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def until_denied(h, user, token, started, limit):
    """Logs in once a second until the login is refused; returns (result, seconds since
    `started`). Fails if it is still allowed after `limit` seconds."""
    while True:
        r = h.run(user, token)
        if r.code != "PAM_SUCCESS":
            return r, time.monotonic() - started
        assert time.monotonic() - started < limit, f"still allowed after {limit} s"
        time.sleep(1)


# --- the seed flows with the real kubectl ---------------------------------------------------

def test_kubectl_seed_flow_serviceaccount_role_token_login(kube, h):
    """kubectl create serviceaccount, role, rolebinding, token --audience --duration: the
    token kubectl prints logs in through the module."""
    kubectl(kube, "create", "serviceaccount", "seed", "-n", "team-a")
    kubectl(kube, "create", "role", "seed-reader", "-n", "team-a", "--verb=get",
            "--resource=pods")
    kubectl(kube, "create", "rolebinding", "seed-reader", "-n", "team-a", "--role=seed-reader",
            "--serviceaccount=team-a:seed")
    can = kubectl(kube, "auth", "can-i", "get", "pods", "-n", "team-a",
                  "--as=system:serviceaccount:team-a:seed", check=False)
    assert can.stdout.strip() == "yes", can
    token = kubectl(kube, "create", "token", "seed", "-n", "team-a", f"--audience={AUDIENCE}",
                    "--duration=10m").stdout.strip()
    h.secrets.append(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 600 and claims["aud"] == [AUDIENCE]
    # map serviceaccount:team-*/* {name}: the account is the ServiceAccount's name
    h.write_conf(rules=["map serviceaccount:team-*/* {name}"])
    with open(h.passwd, "a") as f:
        f.write("seed:x:1010:1010:seed:/tmp:/bin/sh\n")
    r = h.run("seed", token)
    expect(r, "PAM_SUCCESS", "ok", sa="team-a/seed", user="seed")


def test_kubectl_token_bound_to_pod(kube, h):
    """kubectl create token --bound-object-kind Pod: the decision names the pod."""
    h.ensure_sa("pam", "pam-user")
    kube.create_pod("pam", "bound-pod", "pam-user")
    token = kubectl(kube, "create", "token", "pam-user", "-n", "pam", f"--audience={AUDIENCE}",
                    "--bound-object-kind=Pod", "--bound-object-name=bound-pod").stdout.strip()
    h.secrets.append(token)
    r = h.run("alice", token)
    expect(r, "PAM_SUCCESS", "ok", sa="pam/pam-user", pod="bound-pod")
    kube.delete_pod("pam", "bound-pod")


def test_kubectl_create_f_tokenreview(kube, h):
    """kubectl create -f of a TokenReview (what an administrator runs by hand) answers as the
    module's own review does."""
    token = h.token("pam", "pam-user")
    manifest = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                           "spec": {"token": token, "audiences": [AUDIENCE]}})
    proc = kubectl(kube, "create", "-f", "-", "-o", "json", stdin=manifest)
    status = json.loads(proc.stdout)["status"]
    assert status["authenticated"] is True
    assert status["user"]["username"] == "system:serviceaccount:pam:pam-user"
    assert status["audiences"] == [AUDIENCE]


def test_legacy_secret_token_from_the_real_controller(kube, h):
    """A kubernetes.io/service-account-token Secret filled by the real token controller:
    refused by default, accepted with allow_legacy_tokens = yes, refused once the Secret is
    deleted (after kube-apiserver's own success cache)."""
    h.ensure_sa("pam", "pam-user")
    token = kube.legacy_secret("pam", "pam-user", "pam-user-legacy")
    h.secrets.append(token)
    assert "exp" not in jwt.decode(token, options={"verify_signature": False})
    expect(h.run("alice", token), "PAM_AUTH_ERR", "legacy_token")
    # a legacy token carries no audience of ours: kube-apiserver accepts it only for its own
    # API audiences (docs/kubernetes.md §4), so a host that allows them must configure those
    h.write_conf(extra="allow_legacy_tokens = yes")
    expect(h.run("alice", token), "PAM_AUTH_ERR", "unauthenticated")
    h.write_conf(audiences=(cluster.ISSUER,), extra="allow_legacy_tokens = yes")
    expect(h.run("alice", token), "PAM_SUCCESS", "ok", sa="pam/pam-user")
    kube.delete_secret("pam", "pam-user-legacy")
    deleted = time.monotonic()
    r, delay = until_denied(h, "alice", token, deleted, KUBE_AUTH_CACHE + 20)
    expect(r, "PAM_AUTH_ERR", "unauthenticated")
    print(f"\nlegacy Secret deleted: refused after {delay:.1f} s")


# --- decisions --------------------------------------------------------------------------------

def test_allowed(kube, h):
    r = h.run("alice", h.token("pam", "pam-user"))
    expect(r, "PAM_SUCCESS", "ok", sa="pam/pam-user", user="alice", server=kube.url)
    assert r.env["K8S_SERVICEACCOUNT"] == "pam/pam-user"
    assert r.env["K8S_USERNAME"] == "system:serviceaccount:pam:pam-user"
    assert r.env["K8S_UID"] == sa_uid(kube, "pam", "pam-user")
    assert r.env["K8S_GROUPS"].split(",") == ["system:serviceaccounts",
                                             "system:serviceaccounts:pam",
                                             "system:authenticated"]
    assert r.env["K8S_CREDENTIAL_ID"].startswith("JTI=")


def test_wrong_audience(kube, h):
    r = h.run("alice", h.token("pam", "pam-user", audiences=("some-other-audience",)))
    expect(r, "PAM_AUTH_ERR", "unauthenticated")


def test_unmapped_serviceaccount(kube, h):
    r = h.run("alice", h.token("pam", "someone-else"))
    expect(r, "PAM_AUTH_ERR", "not_mapped", sa="pam/someone-else")


def test_deny_rule_over_matching_map(kube, h):
    h.write_conf(rules=["map serviceaccount:*/* alice", "deny serviceaccount:kube-system/*"])
    r = h.run("alice", h.token("kube-system", "intruder"))
    expect(r, "PAM_AUTH_ERR", "deny_rule", sa="kube-system/intruder")


def test_expired_token_signed_by_the_cluster(kube, h):
    h.ensure_sa("pam", "pam-user")
    now = time.time()
    token = signed_token(kube, "pam", "pam-user", iat=now - 7200, exp=now - 3600)
    h.secrets.append(token)
    status, reply = kube.token_review(token, [AUDIENCE])
    assert "has expired" in reply["status"].get("error", ""), reply["status"]
    expect(h.run("alice", token), "PAM_AUTH_ERR", "unauthenticated")


def test_not_yet_valid_token_signed_by_the_cluster(kube, h):
    h.ensure_sa("pam", "pam-user")
    now = time.time()
    token = signed_token(kube, "pam", "pam-user", iat=now + 3600, exp=now + 7200)
    h.secrets.append(token)
    expect(h.run("alice", token), "PAM_AUTH_ERR", "unauthenticated")


def test_token_signed_by_the_cluster_key_is_accepted(kube, h):
    """The control for the two above: the same construction with valid times is allowed, so
    their refusals come from the times and nothing else."""
    h.ensure_sa("pam", "pam-user")
    now = time.time()
    token = signed_token(kube, "pam", "pam-user", iat=now - 10, exp=now + 600)
    h.secrets.append(token)
    expect(h.run("alice", token), "PAM_SUCCESS", "ok", sa="pam/pam-user")


def test_deleted_serviceaccount(kube, h):
    """Refused once kube-apiserver's 10 s success cache and our cache_ttl have passed."""
    cache_ttl = 3
    h.write_conf(cache_ttl=cache_ttl)
    token = h.token("team-b", "leaver")
    with open(h.passwd, "a") as f:
        f.write("leaver:x:1011:1011:leaver:/tmp:/bin/sh\n")
    expect(h.run("leaver", token), "PAM_SUCCESS", "ok", cache="miss")
    kube.delete_sa("team-b", "leaver")
    deleted = time.monotonic()
    r, delay = until_denied(h, "leaver", token, deleted, KUBE_AUTH_CACHE + cache_ttl + 20)
    expect(r, "PAM_AUTH_ERR", "unauthenticated")
    print(f"\ndeleted ServiceAccount: refused after {delay:.1f} s (cache_ttl {cache_ttl} s)")


def test_deleted_bound_pod(kube, h):
    h.ensure_sa("pam", "pam-user")
    kube.create_pod("pam", "short-lived", "pam-user")
    token = h.token("pam", "pam-user", bound={"kind": "Pod", "apiVersion": "v1",
                                              "name": "short-lived"})
    expect(h.run("alice", token), "PAM_SUCCESS", "ok", pod="short-lived")
    kube.delete_pod("pam", "short-lived")  # not scheduled to a node: deleted at once
    deleted = time.monotonic()
    r, delay = until_denied(h, "alice", token, deleted, KUBE_AUTH_CACHE + 20)
    expect(r, "PAM_AUTH_ERR", "unauthenticated")
    print(f"\ndeleted bound Pod: refused after {delay:.1f} s (cache off)")


def test_reviewer_without_auth_delegator(kube, h):
    """A reviewer whose ServiceAccount has no system:auth-delegator binding: 403 from the
    real RBAC, an outage for PAM (AUTHINFO_UNAVAIL), never a denial of the user's token."""
    h.ensure_sa("pam-k8stoken", "unbound-reviewer")
    weak = kube.token_request("pam-k8stoken", "unbound-reviewer", seconds=3600)
    h.secrets.append(weak)
    h._write_private(h.reviewer_file, weak)
    r = h.run("alice", h.token("pam", "pam-user"))
    expect(r, "PAM_AUTHINFO_UNAVAIL", "reviewer_rejected")


def test_reviewer_by_client_certificate(kube, h):
    crt, key = kube.client_cert("reviewer")
    for src in (crt, key):
        os.chmod(src, 0o600)
    h.write_conf(credential=f"client_cert_file = {crt}\nclient_key_file = {key}")
    expect(h.run("alice", h.token("pam", "pam-user")), "PAM_SUCCESS", "ok", sa="pam/pam-user")
    crt, key = kube.client_cert("stranger")
    h.write_conf(credential=f"client_cert_file = {crt}\nclient_key_file = {key}")
    expect(h.run("alice", h.token("pam", "pam-user")), "PAM_AUTHINFO_UNAVAIL",
           "reviewer_rejected")


def test_failover_when_the_first_server_is_stopped(kube, h):
    """A second kube-apiserver of the same cluster answers, is stopped, and the module then
    fails over from it to the first within one login."""
    second = kube.start_second_apiserver()
    try:
        h.write_conf(servers=[second])
        token = h.token("pam", "pam-user")
        expect(h.run("alice", token), "PAM_SUCCESS", "ok", server=second)
    finally:
        kube.stop_second_apiserver()
    h.write_conf(servers=[second, kube.url])
    expect(h.run("alice", token), "PAM_SUCCESS", "ok", server=kube.url)
    h.write_conf(servers=[second])
    expect(h.run("alice", token), "PAM_AUTHINFO_UNAVAIL", "transport")


@pytest.mark.parametrize("where", ["newline", "carriage_return"])
def test_token_with_whitespace_inside_is_refused_locally(kube, h, where):
    """kube-apiserver accepts a bound token with \\r or \\n inside (go-jose strips
    whitespace); the module must never send or allow one (docs/kubernetes.md)."""
    token = h.token("pam", "pam-user")
    char = {"newline": "\n", "carriage_return": "\r"}[where]
    cut = token.rindex(".") + 20
    spaced = token[:cut] + char + token[cut:]
    status, reply = kube.token_review(spaced, [AUDIENCE])
    assert reply["status"]["authenticated"] is True  # the server would have said yes
    expect(h.run("alice", spaced), "PAM_AUTH_ERR", "not_jwt")
