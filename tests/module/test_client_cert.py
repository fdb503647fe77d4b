"""The reviewer credential as an x509 client certificate (client_cert_file + client_key_file)
against the test apiserver's --client-ca-file authentication."""
import os
import shutil

import pytest


def credential(h, who, key_mode=0o600):
    """Copies the server's <who>-client certificate and key into h.tmp (owned by the trusted
    owner, root in make check; key mode key_mode) and returns the config lines naming them."""
    src_crt, src_key = h.api.client_cert(who)
    crt, key = os.path.join(h.tmp, f"{who}.crt"), os.path.join(h.tmp, f"{who}.key")
    shutil.copyfile(src_crt, crt)
    os.chmod(crt, 0o644)
    shutil.copyfile(src_key, key)
    os.chmod(key, key_mode)
    if os.geteuid() == 0:
        os.chown(crt, 0, 0)
        os.chown(key, 0, 0)
    return f"client_cert_file = {crt}\nclient_key_file = {key}"


def requests_made(h):
    return h.api.requests()["counts"].get("/apis/authentication.k8s.io/v1/tokenreviews", 0)


def test_x509_reviewer_allows_real_token(h):
    h.write_conf(credential=credential(h, "reviewer"))
    h.api.reset_requests()
    r = h.run("alice", h.token())
    assert r.code == "PAM_SUCCESS", r
    assert r.decision()["verdict"] == "allow"
    last = h.api.requests()["last"][-1]
    assert last["path"] == "/apis/authentication.k8s.io/v1/tokenreviews"
    assert "authorization" not in last["headers"]  # the certificate alone authenticated the module


def test_x509_stranger_is_reviewer_rejected(h):
    h.write_conf(credential=credential(h, "stranger"))
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTHINFO_UNAVAIL", r
    assert r.decision()["reason"] == "reviewer_rejected"


def test_x509_untrusted_certificate_is_transport(h):
    h.write_conf(credential=credential(h, "untrusted"))
    h.api.reset_requests()
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTHINFO_UNAVAIL", r
    assert r.decision()["reason"] == "transport"
    assert requests_made(h) == 0


def test_x509_key_readable_by_others_is_reviewer_credential(h):
    h.write_conf(credential=credential(h, "reviewer", key_mode=0o644))
    h.api.reset_requests()
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTHINFO_UNAVAIL", r
    assert r.decision()["reason"] == "reviewer_credential"
    assert requests_made(h) == 0
