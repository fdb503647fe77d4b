"""SECURITY.md B01-B09 and C01-C05: TLS, redirects, the reviewer credential, outages
and deadlines. Time-to-deny figures are printed for the closing report (run pytest -s)."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from harness import TIMED

import ktest
from listeners import (Blackhole, CountingListener, RecordingTLSServer, closed_port,
                       self_signed_cert)

TR = "/apis/authentication.k8s.io/v1/tokenreviews"
TIMEOUT = 3          # the harness config: timeout = 3
CONNECT_TIMEOUT = 1  # connect_timeout = 1


def other_server(tmp, cert):
    server = ktest.ApiServer()
    server.start(os.path.join(tmp, cert), cert=cert)
    return server


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="kt-tr-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def figure(name, seconds):
    print(f"\nFIGURE time-to-deny {name}: {seconds * 1000:.0f} ms")


@pytest.fixture
def attacker_ca_in_system_store():
    """Installs a CA into the system trust store for one test, and removes it afterwards."""
    installed = []

    def install(pem_path):
        dest = "/usr/local/share/ca-certificates/pam-k8stoken-test-attacker.crt"
        shutil.copy(pem_path, dest)
        installed.append(dest)
        subprocess.run(["update-ca-certificates"], check=True, capture_output=True)
    yield install
    for path in installed:
        os.unlink(path)
        subprocess.run(["update-ca-certificates", "--fresh"], check=True, capture_output=True)


def test_b01_unknown_ca_refused_even_if_system_trusts_it(h, tmp, attacker_ca_in_system_store):
    evil = other_server(tmp, "unknown-ca")
    try:
        served_ca = os.path.join(evil.state_dir, "served-ca.crt")
        if shutil.which("update-ca-certificates"):
            attacker_ca_in_system_store(served_ca)
        h.write_conf(servers=[evil.url])
        r = h.run("alice", h.token(), extra_env={"SSL_CERT_FILE": served_ca,
                                                 "CURL_CA_BUNDLE": served_ca})
        assert r.code == "PAM_AUTHINFO_UNAVAIL"
        assert r.decision()["reason"] == "transport"
        assert evil.requests()["counts"].get(TR, 0) == 0
    finally:
        evil.stop()


@pytest.mark.parametrize("cert", ["wrong-san", "expired", "not-yet-valid"])
def test_b02_b03_bad_server_certificate(h, tmp, cert):
    bad = other_server(tmp, cert)
    try:
        h.write_conf(servers=[bad.url], ca_file=bad.ca_file)
        r = h.run("alice", h.token())
        assert r.code == "PAM_AUTHINFO_UNAVAIL"
        assert r.decision()["reason"] == "transport"
        assert bad.requests()["counts"].get(TR, 0) == 0
    finally:
        bad.stop()


@pytest.mark.parametrize("url", ["http://127.0.0.1:6443", "file:///etc/passwd",
                                 "https://user:pw@127.0.0.1:6443", "127.0.0.1:6443",
                                 "https://", "ftp://127.0.0.1"])
def test_b04_only_https_urls(h, url):
    h.write_conf(servers=[url])
    r = h.run("alice", "x.y.z")
    assert r.code == "PAM_SERVICE_ERR"
    assert any("configuration refused" in l and "server" in l for l in r.log_lines())


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("target", ["http", "https-other", "https-same"])
def test_b05_redirects_never_followed(h, status, target):
    listener = CountingListener()
    try:
        location = {"http": f"http://127.0.0.1:{listener.port}/x",
                    "https-other": f"https://localhost:{listener.port}/x",
                    "https-same": h.api.url + "/apis/authentication.k8s.io/v1/tokenreviews"}[target]
        h.api.add_fault(path=TR, status=status, redirect=location, times=1)
        h.api.reset_requests()
        r = h.run("alice", h.token())
        assert r.code == "PAM_AUTHINFO_UNAVAIL"
        assert r.decision()["reason"] == "redirect_refused"
        assert listener.connections == 0
        assert h.api.requests()["counts"].get(TR, 0) == 1
    finally:
        listener.close()


def test_b06_old_tls_refused(h):
    import ssl
    cert, key = self_signed_cert(h.tmp)
    server = RecordingTLSServer(cert, key, max_version=ssl.TLSVersion.TLSv1_1)
    try:
        h.write_conf(servers=[f"https://127.0.0.1:{server.port}"], ca_file=cert)
        r = h.run("alice", h.token())
        assert r.code == "PAM_AUTHINFO_UNAVAIL"
        assert r.decision()["reason"] == "transport"
        assert server.handshakes == []
    finally:
        server.close()


@pytest.mark.parametrize("when", ["before_response", "mid_body"])
def test_b07_peer_reset(h, when):
    h.api.add_fault(path=TR, reset=when)
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTHINFO_UNAVAIL"
    assert r.decision()["reason"] == "transport"


def test_b08_http2_not_offered(h):
    cert, key = self_signed_cert(h.tmp)
    server = RecordingTLSServer(cert, key)
    try:
        h.write_conf(servers=[f"https://127.0.0.1:{server.port}"], ca_file=cert)
        r = h.run("alice", h.token())
        assert r.code == "PAM_AUTHINFO_UNAVAIL"
        assert len(server.handshakes) == 1
        version, alpn = server.handshakes[0]
        assert alpn in (None, "http/1.1")
        assert version in ("TLSv1.2", "TLSv1.3")
    finally:
        server.close()


@pytest.mark.parametrize("problem", ["missing", "empty", "mode0644", "owner", "symlink",
                                     "crlf", "space", "nul", "huge"])
def test_b09_bad_reviewer_credential(h, problem):
    path = h.reviewer_file
    good = h.api.reviewer_token
    if problem == "missing":
        os.unlink(path)
    elif problem == "empty":
        h._write_private(path, "")
    elif problem == "mode0644":
        os.chmod(path, 0o644)
    elif problem == "owner":
        os.chown(path, 65534, 65534)
    elif problem == "symlink":
        target = path + ".real"
        os.rename(path, target)
        os.symlink(target, path)
    elif problem == "crlf":
        h._write_private(path, good[:20] + "\r\n" + good[20:])
    elif problem == "space":
        h._write_private(path, good[:20] + " " + good[20:])
    elif problem == "nul":
        h._write_private(path, good[:20] + "\0" + good[20:])
    elif problem == "huge":
        h._write_private(path, "a" * (64 * 1024 + 1))
    h.api.reset_requests()
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTHINFO_UNAVAIL"
    assert r.decision()["reason"] == "reviewer_credential"
    assert re.search(r"^syslog 3 pam_k8stoken\S* deny ", r.log, re.M)
    assert h.api.requests()["counts"].get(TR, 0) == 0


def test_b09_trailing_newline_trimmed_and_rotation_picked_up(h):
    h._write_private(h.reviewer_file, h.api.reviewer_token + "\n")
    assert h.run("alice", h.token()).code == "PAM_SUCCESS"
    other = h.token(ns="pam", name="not-a-reviewer")  # valid SA without RBAC rights
    h._write_private(h.reviewer_file, other)
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTHINFO_UNAVAIL"
    assert r.decision()["reason"] == "reviewer_rejected"
    h._write_private(h.reviewer_file, h.api.reviewer_token)
    assert h.run("alice", h.token()).code == "PAM_SUCCESS"


def test_c01_port_closed(h):
    h.write_conf(servers=[f"https://127.0.0.1:{closed_port()}"])
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTHINFO_UNAVAIL"
    assert r.decision()["reason"] == "transport"
    figure("refused port", r.elapsed)
    assert not TIMED or r.elapsed < 1.0


def test_c02_blackhole_fails_at_connect_deadline(h):
    hole = Blackhole()
    try:
        h.write_conf(servers=[f"https://127.0.0.1:{hole.port}"])
        r = h.run("alice", h.token())
        assert r.code == "PAM_AUTHINFO_UNAVAIL"
        assert r.decision()["reason"] in ("timeout", "transport")
        figure(f"blackhole (connect_timeout {CONNECT_TIMEOUT} s)", r.elapsed)
        assert not TIMED or CONNECT_TIMEOUT * 0.9 <= r.elapsed <= CONNECT_TIMEOUT * 1.1 + 0.3
    finally:
        hole.close()


def test_c02_failover_to_second_server_within_deadline(h):
    hole = Blackhole()
    try:
        h.write_conf(servers=[f"https://127.0.0.1:{hole.port}", h.api.url])
        r = h.run("alice", h.token())
        assert r.code == "PAM_SUCCESS"
        assert r.decision()["server"] == h.api.url
    finally:
        hole.close()


def test_c03_tls_handshake_stall(h):
    """libcurl counts the TLS handshake as part of connecting: connect_timeout bounds it."""
    silent = CountingListener()
    try:
        h.write_conf(servers=[f"https://127.0.0.1:{silent.port}"])
        r = h.run("alice", h.token())
        assert r.code == "PAM_AUTHINFO_UNAVAIL"
        assert r.decision()["reason"] == "timeout"
        figure(f"TLS handshake stall (connect_timeout {CONNECT_TIMEOUT} s)", r.elapsed)
        assert not TIMED or CONNECT_TIMEOUT * 0.9 <= r.elapsed <= CONNECT_TIMEOUT * 1.1 + 0.3
        assert silent.connections == 1
    finally:
        silent.close()


def test_c03_server_never_answers(h):
    h.api.add_fault(path=TR, latency_ms=20000, times=1)
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTHINFO_UNAVAIL"
    assert r.decision()["reason"] == "timeout"
    figure(f"no answer (timeout {TIMEOUT} s)", r.elapsed)
    assert not TIMED or TIMEOUT * 0.9 <= r.elapsed <= TIMEOUT * 1.1 + 0.3


def test_c04_trickle(h):
    h.api.add_fault(path=TR, trickle_bps=1, times=1)
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTHINFO_UNAVAIL"
    assert r.decision()["reason"] == "timeout"
    figure(f"trickle 1 B/s (timeout {TIMEOUT} s)", r.elapsed)
    assert not TIMED or TIMEOUT * 0.9 <= r.elapsed <= TIMEOUT * 1.1 + 0.3


def test_c05_name_does_not_resolve(h):
    h.write_conf(servers=["https://pam-k8stoken-test.invalid:6443"])
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTHINFO_UNAVAIL"
    figure("unresolvable name", r.elapsed)
    assert not TIMED or r.elapsed <= TIMEOUT * 1.1 + 0.3
