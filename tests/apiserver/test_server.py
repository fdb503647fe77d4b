"""Start-up, state directory, TLS variants, discovery, /version, OIDC documents, clean SIGTERM."""
import json
import os
import socket
import ssl
import stat

import pytest

import tokens
from ktest import ApiServer

API_AUD = "https://kubernetes.default.svc.cluster.local"


def test_state_dir(server):
    files = {name: stat.S_IMODE(os.stat(os.path.join(server.state_dir, name)).st_mode)
             for name in ("ca.crt", "url", "port", "admin.token", "kubeconfig", "reviewer.token", "pid", "ready")}
    assert files.pop("ca.crt") == 0o644
    assert set(files.values()) == {0o600}
    assert server.url == f"https://127.0.0.1:{server.port}"
    assert not server.reviewer_token.endswith("\n") and not server.url.endswith("\n")
    with open(server.kubeconfig) as f:
        kubeconfig = f.read()
    assert f"server: {server.url}" in kubeconfig and f"token: {server.admin_token}" in kubeconfig


def test_reviewer_token(server):
    status, obj = server.token_review(server.reviewer_token)
    assert obj["status"]["user"]["username"] == "system:serviceaccount:pam-k8stoken:reviewer"
    assert obj["status"]["audiences"] == [API_AUD]
    claims = json.loads(tokens.b64url_decode(server.reviewer_token.split(".")[1]))
    assert claims["exp"] - claims["iat"] == 365 * 86400
    status, crb = server.call("GET", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/pam-k8stoken-reviewer")
    assert crb["roleRef"]["name"] == "system:auth-delegator"
    status, role = server.call("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:auth-delegator")
    assert role["rules"] == [
        {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"]},
        {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"]}]


def test_tls_names_and_verification(server):
    context = ssl.create_default_context(cafile=server.ca_file)
    for host in ("127.0.0.1", "localhost"):
        with socket.create_connection(("127.0.0.1", server.port)) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_version_default_and_configurable(fresh):
    status, headers, body = fresh.request("GET", "/version")
    info = json.loads(body)
    assert body.startswith(b'{\n  "major": "1",\n  "minor": "31",')  # WriteRawJSON indents
    assert info["gitVersion"] == "v1.31.4" and list(info)[-1] == "platform"
    fresh.set_config(k8s_version="1.33.1")
    info = fresh.call("GET", "/version")[1]
    assert info["minor"] == "33" and "emulationMinor" in info


def test_discovery(fresh):
    api = fresh.call("GET", "/api")[1]
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    groups = fresh.call("GET", "/apis")[1]
    assert {g["name"] for g in groups["groups"]} == {"authentication.k8s.io", "authorization.k8s.io",
                                                    "rbac.authorization.k8s.io"}
    v1 = fresh.call("GET", "/api/v1")[1]
    sa = next(r for r in v1["resources"] if r["name"] == "serviceaccounts")
    assert sa["shortNames"] == ["sa"] and sa["namespaced"] is True
    assert {"name": "serviceaccounts/token", "singularName": "", "namespaced": True, "group": "authentication.k8s.io",
            "version": "v1", "kind": "TokenRequest", "verbs": ["create"]} in v1["resources"]
    authn = fresh.call("GET", "/apis/authentication.k8s.io/v1")[1]
    assert {"name": "tokenreviews", "singularName": "tokenreview", "namespaced": False, "kind": "TokenReview",
            "verbs": ["create"]} in authn["resources"]
    status, headers, body = fresh.request("GET", "/openapi/v2")
    assert status == 200 and body == b""
    assert headers["content-type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def test_anonymous_discovery_is_forbidden_when_enabled(fresh):
    assert fresh.call("GET", "/api", token="")[0] == 401
    fresh.set_config(anonymous_quirk=True)
    status, obj = fresh.call("GET", "/api", token="")
    assert status == 403 and obj["message"] == 'forbidden: User "system:anonymous" cannot get path "/api"'
    assert fresh.call("GET", "/version", token="")[0] == 200


def test_oidc_documents(fresh):
    status, headers, body = fresh.request("GET", "/.well-known/openid-configuration")
    assert headers["cache-control"] == "public, max-age=3600"
    assert json.loads(body) == {"issuer": API_AUD, "jwks_uri": fresh.url + "/openid/v1/jwks",
                                "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                                "id_token_signing_alg_values_supported": ["RS256"]}
    status, headers, body = fresh.request("GET", "/openid/v1/jwks")
    assert headers["content-type"] == "application/jwk-set+json"
    key = json.loads(body)["keys"][0]
    assert list(key) == ["use", "kty", "kid", "alg", "n", "e"] and key["e"] == "AQAB"
    sa_token = fresh.token_request("default", "default")
    assert fresh.call("GET", "/openid/v1/jwks", token=sa_token)[0] == 200  # system:serviceaccounts may read it


@pytest.mark.parametrize("mode, reason", [("unknown-ca", "unable to get local issuer certificate"),
                                          ("wrong-san", "IP address mismatch"),
                                          ("expired", "certificate has expired"),
                                          ("not-yet-valid", "certificate is not yet valid")])
def test_broken_certificates(tmp_path, mode, reason):
    with ApiServer().start(str(tmp_path), cert=mode) as srv:
        context = ssl.create_default_context(cafile=srv.ca_file)
        with socket.create_connection(("127.0.0.1", srv.port)) as raw:
            with pytest.raises(ssl.SSLCertVerificationError, match=reason):
                context.wrap_socket(raw, server_hostname="127.0.0.1")
        assert srv.call("GET", "/version")[0] == 200  # the server itself keeps working
        assert os.path.exists(srv.state_dir + "/served-ca.crt") == (mode == "unknown-ca")


def test_sigterm_exits_cleanly_and_log_has_no_secrets(tmp_path):
    srv = ApiServer().start(str(tmp_path), issuer="https://issuer.example", api_audiences=["a1", "a2"])
    token = srv.token_request("default", "default", ["a2"], 600)
    assert srv.token_review(token, ["a2"])[1]["status"]["authenticated"] is True
    assert srv.call("GET", "/.well-known/openid-configuration")[1]["issuer"] == "https://issuer.example"
    assert srv.stop() == 0
    assert not os.path.exists(tmp_path / "ready")
    log = (tmp_path / "server.log").read_text()
    assert "POST /apis/authentication.k8s.io/v1/tokenreviews 201" in log
    for secret in (token, srv.admin_token, srv.reviewer_token):
        for start in range(0, len(secret) - 16, 16):
            assert secret[start:start + 16] not in log
    assert (tmp_path / "stderr.log").read_text() == ""
