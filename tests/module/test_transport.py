"""docs/security.md B01-B09 and C01-C05: TLS, redirects, the reviewer credential, outages
and deadlines. Time-to-deny figures are printed for the closing report (run pytest -s)."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from harness import CONNECT_TIMEOUT, DEADLINE_MS, TIMEOUT

import ktest
from listeners import (Blackhole, CountingListener, RecordingTLSServer, closed_port,
                       self_signed_cert)

TR = "/apis/authentication.k8s.io/v1/tokenreviews"
# The deadlines here are upper bounds that hold under ASan and valgrind on a loaded 2-core
# machine: the module's own limit (DEADLINE_MS, it kills the helper then) plus a second
# of slack. The times themselves are figures for the benchmark (printed with pytest -s).
SLACK_MS = 1000


def outcome(r, code, reason):
    assert r.code == code, r
    d = r.decision()
    assert d is not None and d["reason"] == reason, r
    return int(d["ms"])


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


@pytest.mark.needs_root  # writes the system trust store
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
    assert r.code == "PAM_SERVICE_ERR", r
    assert r.decision() is None, r          # refused before any decision
    refused = [l for l in r.log_lines() if l.startswith("configuration refused: ")]
    assert len(refused) == 1 and refused[0].startswith(f"configuration refused: {h.conf}:1: "), r
    assert re.search(r"^syslog 3 pam_k8stoken\S* configuration refused: ", r.log, re.M)


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
        outcome(r, "PAM_AUTHINFO_UNAVAIL", "http_status")   # the recorder answers 503
        assert len(server.handshakes) == 1
        version, alpn = server.handshakes[0]
        assert alpn in (None, "http/1.1")
        assert version in ("TLSv1.2", "TLSv1.3")
    finally:
        server.close()


@pytest.mark.parametrize("problem", ["missing", "empty", "mode0644",
                                     pytest.param("owner", marks=pytest.mark.needs_root),
                                     "symlink", "crlf", "space", "nul", "huge"])
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
    outcome(h.run("alice", h.token()), "PAM_SUCCESS", "ok")
    other = h.token(ns="pam", name="not-a-reviewer")  # valid SA without RBAC rights
    h._write_private(h.reviewer_file, other)
    outcome(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "reviewer_rejected")
    h._write_private(h.reviewer_file, h.api.reviewer_token)
    outcome(h.run("alice", h.token()), "PAM_SUCCESS", "ok")


def test_c01_port_closed(h):
    h.write_conf(servers=[f"https://127.0.0.1:{closed_port()}"])
    r = h.run("alice", h.token())
    ms = outcome(r, "PAM_AUTHINFO_UNAVAIL", "transport")
    figure("refused port", ms / 1000)
    assert ms < TIMEOUT * 1000, "a refused connection must not wait for the timeout"


def test_c02_blackhole_fails_at_connect_deadline(h):
    hole = Blackhole()
    try:
        h.write_conf(servers=[f"https://127.0.0.1:{hole.port}"])
        r = h.run("alice", h.token())
        ms = outcome(r, "PAM_AUTHINFO_UNAVAIL", "timeout")
        figure(f"blackhole (connect_timeout {CONNECT_TIMEOUT} s)", ms / 1000)
        # not before connect_timeout; within the module's deadline
        assert CONNECT_TIMEOUT * 1000 * 0.9 <= ms <= DEADLINE_MS + SLACK_MS
    finally:
        hole.close()


def test_c02_failover_to_second_server_within_deadline(h):
    hole = Blackhole()
    try:
        h.write_conf(servers=[f"https://127.0.0.1:{hole.port}", h.api.url])
        r = h.run("alice", h.token())
        outcome(r, "PAM_SUCCESS", "ok")
        assert r.decision()["server"] == h.api.url
    finally:
        hole.close()


def test_c03_tls_handshake_stall(h):
    """libcurl counts the TLS handshake as part of connecting: connect_timeout bounds it."""
    silent = CountingListener()
    try:
        h.write_conf(servers=[f"https://127.0.0.1:{silent.port}"])
        r = h.run("alice", h.token())
        ms = outcome(r, "PAM_AUTHINFO_UNAVAIL", "timeout")
        figure(f"TLS handshake stall (connect_timeout {CONNECT_TIMEOUT} s)", ms / 1000)
        # bounded by connect_timeout, not by the (longer) timeout
        assert CONNECT_TIMEOUT * 1000 * 0.9 <= ms < TIMEOUT * 1000
        assert silent.connections == 1
    finally:
        silent.close()


def test_c03_server_never_answers(h):
    h.api.add_fault(path=TR, latency_ms=(TIMEOUT + 20) * 1000, times=1)
    r = h.run("alice", h.token())
    ms = outcome(r, "PAM_AUTHINFO_UNAVAIL", "timeout")
    figure(f"no answer (timeout {TIMEOUT} s)", ms / 1000)
    assert TIMEOUT * 1000 * 0.9 <= ms <= DEADLINE_MS + SLACK_MS


def test_c04_trickle(h):
    h.api.add_fault(path=TR, trickle_bps=1, times=1)
    r = h.run("alice", h.token())
    ms = outcome(r, "PAM_AUTHINFO_UNAVAIL", "timeout")
    figure(f"trickle 1 B/s (timeout {TIMEOUT} s)", ms / 1000)
    assert TIMEOUT * 1000 * 0.9 <= ms <= DEADLINE_MS + SLACK_MS


def test_c05_name_does_not_resolve(h):
    h.write_conf(servers=["https://pam-k8stoken-test.invalid:6443"])
    r = h.run("alice", h.token())
    ms = outcome(r, "PAM_AUTHINFO_UNAVAIL", "transport")
    assert "resolve" in r.decision()["detail"].lower(), r
    figure("unresolvable name", ms / 1000)
    assert ms <= DEADLINE_MS + SLACK_MS

