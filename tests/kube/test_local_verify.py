"""Local verification, the circuit breaker and offline grace against a real kube-apiserver
1.34 (docs/design.md §6.3-§6.5): the key set comes through the cluster's own OIDC discovery
with the reviewer's credential (system:service-account-issuer-discovery is bound to
system:serviceaccounts by default, so a ServiceAccount reviewer may read it and a client
certificate reviewer may not); every local refusal is one kube-apiserver makes too (checked
with local_verify = no); key rotation runs on a second kube-apiserver that trusts two keys.
A decision without a server= field sent no request (logline.c names the server it asked)."""
import base64
import hashlib
import http.client
import json
import os
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import cluster
from harness import AUDIENCE
from test_real_cluster import expect, sa_uid, signed_token


def local_refusal(h, token, reason):
    """Refused on the host with no request; and kube-apiserver itself refuses it too."""
    h.write_conf(local_verify="yes")
    d = expect(h.run("alice", token), "PAM_AUTH_ERR", reason)
    assert "server" not in d, d
    h.write_conf(local_verify="no")
    expect(h.run("alice", token), "PAM_AUTH_ERR", "unauthenticated")


def kid_of(public_key):
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def cluster_key(kube):
    return serialization.load_pem_private_key(kube.signing_key(), None)


def claims(kube, **override):
    now = int(time.time())
    c = {"aud": [AUDIENCE], "exp": now + 600, "iat": now, "nbf": now, "iss": cluster.ISSUER,
         "jti": "00000000-0000-4000-8000-000000000002",
         "kubernetes.io": {"namespace": "pam", "serviceaccount": {
             "name": "pam-user", "uid": sa_uid(kube, "pam", "pam-user")}},
         "sub": "system:serviceaccount:pam:pam-user"}
    c.update(override)
    return c


def test_serviceaccount_reviewer_reads_the_keys_and_verifies(kube, h):
    h.write_conf(local_verify="yes")
    h.ensure_sa("pam", "pam-user")
    expect(h.run("alice", h.token("pam", "pam-user")), "PAM_SUCCESS", "ok", sa="pam/pam-user")
    assert os.path.exists(os.path.join(h.cache_dir, "jwks"))
    status, jwks = kube.call("GET", "/openid/v1/jwks")
    assert status == 200 and [k["kid"] for k in jwks["keys"]] == [kid_of(cluster_key(kube).public_key())]


def test_client_certificate_reviewer_may_not_read_the_keys(kube, h):
    crt, key = kube.client_cert("reviewer")
    for src in (crt, key):
        os.chmod(src, 0o600)
    credential = f"client_cert_file = {crt}\nclient_key_file = {key}"
    h.ensure_sa("pam", "pam-user")
    h.write_conf(credential=credential, local_verify="yes")
    d = expect(h.run("alice", h.token("pam", "pam-user")), "PAM_AUTHINFO_UNAVAIL",
               "keys_unavailable")
    assert "403" in d["detail"], d
    os.unlink(os.path.join(h.cache_dir, "jwks-fetch"))
    h.write_conf(credential=credential, local_verify=None)   # auto: one warning, reviewed
    r = h.run("alice", h.token("pam", "pam-user"))
    expect(r, "PAM_SUCCESS", "ok")
    assert [l for l in r.log_lines() if l.startswith("local verification unavailable")], r.log


def test_expired(kube, h):
    now = time.time()
    local_refusal(h, signed_token(kube, "pam", "pam-user", now - 7200, now - 3600), "expired")


def test_not_yet_valid(kube, h):
    now = time.time()
    local_refusal(h, signed_token(kube, "pam", "pam-user", now, now + 3600, nbf=now + 600),
                  "not_yet_valid")


def test_audience_mismatch(kube, h):
    now = time.time()
    local_refusal(h, signed_token(kube, "pam", "pam-user", now, now + 600,
                                  audiences=("someone-else",)), "audience_mismatch")


def test_issuer_mismatch(kube, h):
    key = cluster_key(kube)
    tok = jwt.encode(claims(kube, iss="https://issuer.example"), key, algorithm="RS256",
                     headers={"kid": kid_of(key.public_key())})
    h.secrets.append(tok)
    local_refusal(h, tok, "issuer_mismatch")


def test_bad_signature_with_the_clusters_kid(kube, h):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tok = jwt.encode(claims(kube), other, algorithm="RS256",
                     headers={"kid": kid_of(cluster_key(kube).public_key())})
    h.secrets.append(tok)
    local_refusal(h, tok, "bad_signature")


def test_unknown_key(kube, h):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tok = jwt.encode(claims(kube), other, algorithm="RS256",
                     headers={"kid": kid_of(other.public_key())})
    h.secrets.append(tok)
    local_refusal(h, tok, "unknown_key")


class At(cluster.KubeCluster):
    """The cluster's client aimed at another of its kube-apiservers."""

    def __init__(self, kube, url):
        super().__init__(kube.state_dir)
        self._port = int(url.rsplit(":", 1)[1])

    @property
    def port(self):
        return self._port


def test_key_rotation_on_a_second_apiserver(kube, h):
    """A second kube-apiserver trusts the old key and a new one and signs with the new one:
    a token of each logs in (overlap); the new kid is fetched once, then at most once a
    minute; a token of a key the cluster dropped is refused locally."""
    d = kube.state_dir
    new = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with open(os.path.join(d, "new-sa.key"), "wb") as f:
        f.write(new.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    with open(os.path.join(d, "new-sa.pub"), "wb") as f:
        f.write(new.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    h.ensure_sa("pam", "pam-user")
    old_token = h.token("pam", "pam-user")
    # the same server before and after the rotation: a second kube-apiserver restarted on
    # its port with the new key set (the stored key set belongs to the server list)
    second = kube.start_second_apiserver()
    port = int(second.rsplit(":", 1)[1])
    try:
        h.write_conf(servers=[second], local_verify="yes")
        expect(h.run("alice", old_token), "PAM_SUCCESS", "ok")      # keys: the old one only
        kube.stop_second_apiserver()
        assert kube.start_second_apiserver(key_files=[f"{d}/sa.pub", f"{d}/new-sa.pub"],
                                           signing_key=f"{d}/new-sa.key", port=port) == second
        at = At(kube, second)
        status, jwks = at.call("GET", "/openid/v1/jwks")
        assert status == 200 and len(jwks["keys"]) == 2, jwks
        new_token = at.token_request("pam", "pam-user", [AUDIENCE], 600)
        h.secrets.append(new_token)
        assert jwt.get_unverified_header(new_token)["kid"] == kid_of(new.public_key())
        # within a minute of the last fetch the new kid is not fetched: refused locally
        expect(h.run("alice", new_token), "PAM_AUTH_ERR", "unknown_key")
        os.unlink(os.path.join(h.cache_dir, "jwks-fetch"))     # a minute later
        expect(h.run("alice", new_token), "PAM_SUCCESS", "ok", server=second)
        expect(h.run("alice", old_token), "PAM_SUCCESS", "ok", server=second)
    finally:
        kube.stop_second_apiserver()


def test_breaker_and_offline_grace_when_the_apiserver_stops(kube, h):
    second = kube.start_second_apiserver()
    h.ensure_sa("pam", "pam-user")
    try:
        h.write_conf(servers=[second], local_verify=None, extra="offline_grace = 300")
        expect(h.run("alice", h.token("pam", "pam-user")), "PAM_SUCCESS", "ok", server=second)
        token = h.token("pam", "pam-user")
    finally:
        kube.stop_second_apiserver()
    r = h.run("alice", token, acct=True)
    expect(r, "PAM_SUCCESS", "offline_grace")
    assert r.env.get("K8S_OFFLINE") == "1" and r.acct == "PAM_SUCCESS", r
    d = expect(h.run("alice", token), "PAM_SUCCESS", "offline_grace")
    assert "backoff" in d.get("detail", ""), d    # the open circuit: not even a helper
    # without offline grace the same outage is unavailable, fast once the circuit is open
    h.write_conf(servers=[second], local_verify=None)
    d = expect(h.run("alice", token), "PAM_AUTHINFO_UNAVAIL", "circuit_open")
    assert int(d["ms"]) < 100, d
