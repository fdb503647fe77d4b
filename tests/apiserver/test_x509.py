"""x509 client-certificate authentication (kube-apiserver --client-ca-file): CN is the user, O the groups."""
import os
import socket
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ktest import TOKENREVIEWS, ApiServer

REVIEWER_CN, REVIEWERS = "pam-k8stoken-reviewer-x509", "pam-k8stoken:reviewers"
CRB = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/"


def subject(path):
    with open(path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    name = cert.subject
    return (name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value,
            [a.value for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)], cert)


def test_state_dir_client_certificates(server):
    for stem in ("reviewer-client", "stranger-client", "untrusted-client"):
        base = os.path.join(server.state_dir, stem)
        assert stat.S_IMODE(os.stat(base + ".crt").st_mode) == 0o644
        assert stat.S_IMODE(os.stat(base + ".key").st_mode) == 0o600
    assert (server.reviewer_client_cert, server.reviewer_client_key) == server.client_cert()
    cn, orgs, cert = subject(server.reviewer_client_cert)
    assert (cn, orgs) == (REVIEWER_CN, [REVIEWERS])
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    assert subject(server.client_cert("stranger")[0])[:2] == ("stranger", [])
    with open(os.path.join(server.state_dir, "client-ca.crt"), "rb") as f, open(server.ca_file, "rb") as g:
        client_ca = f.read()
        assert client_ca != g.read()  # a CA of its own, as --client-ca-file usually is
    assert cert.issuer == x509.load_pem_x509_certificate(client_ca).subject
    untrusted = subject(server.client_cert("untrusted")[0])[2]
    assert untrusted.issuer != cert.issuer
    status, crb = server.call("GET", CRB + "pam-k8stoken-reviewer-x509")
    assert status == 200 and crb["roleRef"]["name"] == "system:auth-delegator"
    assert crb["subjects"] == [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": REVIEWERS}]


def test_x509_reviewer_reviews_a_real_token(fresh):
    fresh.call("DELETE", "/api/v1/namespaces/pam/serviceaccounts/x509-user")
    sa = fresh.create_sa("pam", "x509-user")
    token = fresh.token_request("pam", "x509-user", ["pam-test"], 600)
    status, obj = fresh.token_review(token, ["pam-test"], cert=fresh.client_cert())
    assert status == 201
    assert obj["status"]["authenticated"] is True and obj["status"]["audiences"] == ["pam-test"]
    user = obj["status"]["user"]
    assert (user["username"], user["uid"]) == ("system:serviceaccount:pam:x509-user", sa["metadata"]["uid"])
    # the request itself carried no Authorization header
    assert "authorization" not in fresh.requests()["last"][-1]["headers"]
    status, obj = fresh.token_review("garbage", cert=fresh.client_cert())
    assert status == 201 and obj["status"] == {"user": {}, "error": "invalid bearer token"}


def test_x509_user_and_groups(fresh):
    # discovery is allowed to system:authenticated, so the group adder ran; an unbound CN is 403 elsewhere
    assert fresh.call("GET", "/api", token="", cert=fresh.client_cert("stranger"))[0] == 200
    status, obj = fresh.call("GET", "/api/v1/namespaces/default/serviceaccounts", token="",
                             cert=fresh.client_cert("stranger"))
    assert status == 403 and obj["message"] == (
        'serviceaccounts is forbidden: User "stranger" cannot list resource "serviceaccounts" in API group "" '
        'in the namespace "default"')
    status, obj = fresh.call("GET", "/api/v1/namespaces/default/serviceaccounts", token="",
                             cert=fresh.client_cert())
    assert status == 403 and 'User "pam-k8stoken-reviewer-x509" cannot list' in obj["message"]


def test_stranger_gets_exact_403(fresh):
    status, headers, body = fresh.request("POST", TOKENREVIEWS, b'{"spec":{"token":"x"}}', token="",
                                          headers={"Content-Type": "application/json"},
                                          cert=fresh.client_cert("stranger"))
    assert status == 403
    assert headers["x-content-type-options"] == "nosniff"
    assert body == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
                    b'"tokenreviews.authentication.k8s.io is forbidden: User \\"stranger\\" '
                    b'cannot create resource \\"tokenreviews\\" in API group \\"authentication.k8s.io\\" '
                    b'at the cluster scope",'
                    b'"reason":"Forbidden","details":{"group":"authentication.k8s.io","kind":"tokenreviews"},"code":403}\n')


def test_x509_wins_over_bearer_token(fresh):
    """union(x509, bearertoken): a verified certificate decides even when a token is sent too."""
    status, obj = fresh.token_review("x", as_token=fresh.reviewer_token, cert=fresh.client_cert("stranger"))
    assert status == 403 and 'User "stranger" cannot create resource "tokenreviews"' in obj["message"]
    status, obj = fresh.token_review("x", as_token="not-a-token", cert=fresh.client_cert())
    assert status == 201  # an invalid bearer token next to a good certificate does not matter


def _untrusted_context(srv, version):
    context = srv.ssl_context(srv.client_cert("untrusted"))
    context.minimum_version = context.maximum_version = version
    return context


def test_untrusted_client_certificate_fails_handshake(fresh):
    fresh.reset_requests()
    with open(os.path.join(fresh.state_dir, "server.log")) as f:
        log_before = f.read()
    # TLS 1.2: the server's verdict arrives inside the handshake.
    with socket.create_connection(("127.0.0.1", fresh.port)) as raw:
        with pytest.raises(ssl.SSLError, match="ALERT_UNKNOWN_CA"):
            _untrusted_context(fresh, ssl.TLSVersion.TLSv1_2).wrap_socket(raw, server_hostname="127.0.0.1")
    # TLS 1.3: the client finishes first; the server's alert is the first thing it reads.
    with socket.create_connection(("127.0.0.1", fresh.port)) as raw, \
            _untrusted_context(fresh, ssl.TLSVersion.TLSv1_3).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        with pytest.raises(ssl.SSLError, match="ALERT_UNKNOWN_CA"):
            tls.recv(1)
    # An HTTP client gets no answer at all.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        fresh.request("POST", TOKENREVIEWS, b'{"spec":{"token":"x"}}', token="", cert=fresh.client_cert("untrusted"))
    assert fresh.requests()["counts"] == {}
    with open(os.path.join(fresh.state_dir, "server.log")) as f:
        assert "tokenreviews" not in f.read()[len(log_before):]


def test_no_certificate_bearer_path_unchanged(fresh):
    assert fresh.token_review(fresh.admin_token)[1]["status"]["user"]["username"] == "kubernetes-admin"
    assert fresh.call("GET", "/api", token="")[0] == 401
    context = fresh.ssl_context()
    with socket.create_connection(("127.0.0.1", fresh.port)) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    status, obj = fresh.call("POST", TOKENREVIEWS, b'{"spec":{"token":"x"}}', fresh.reviewer_token)
    assert status == 201 and obj["status"]["error"] == "invalid bearer token"
    # The served chain is still the leaf alone (no CA taken from the client-verify store).
    wrong = ssl.create_default_context(cafile=fresh.client_cert("stranger")[0])
    with socket.create_connection(("127.0.0.1", fresh.port)) as raw:
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
            wrong.wrap_socket(raw, server_hostname="127.0.0.1")


def test_client_certificates_work_in_unknown_ca_mode(tmp_path):
    """The client CA does not depend on the serving certificate mode."""
    with ApiServer().start(str(tmp_path), cert="unknown-ca") as srv:
        status, obj = srv.token_review(srv.admin_token, cert=srv.client_cert())
        assert status == 201 and obj["status"]["authenticated"] is True
