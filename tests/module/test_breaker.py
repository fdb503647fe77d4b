"""The circuit breaker (docs/design.md §6.4, docs/security.md C06): a server that failed at
transport level or answered 429/5xx is skipped host-wide for a backoff (1 s doubling to
60 s, a Retry-After of up to 300 s); one login probes it when the backoff ends; a definite
answer is never changed. Each test asserts PAM codes, reasons and what reached the server."""
import os
import re
import subprocess
import time

import pytest

from harness import AUDIENCE, TIMED
from listeners import Blackhole, closed_port

TR = "/apis/authentication.k8s.io/v1/tokenreviews"


def expect(r, code, reason):
    d = r.decision()
    assert d is not None, r
    assert (r.code, d["reason"]) == (code, reason), r
    return d


def reviews(h):
    return h.api.requests()["counts"].get(TR, 0)


def boottime_ms():
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * 1000)


def state(h, server):
    """(failures, open_until - now in ms) of server's breaker file, None when closed."""
    import hashlib
    name = "b-" + hashlib.sha256(server.encode()).hexdigest()[:32]
    path = os.path.join(h.cache_dir, name)
    if not os.path.exists(path):
        return None
    text = open(path).read()
    failures = int(re.search(r"^failures (\d+)$", text, re.M).group(1))
    until = int(re.search(r"^open_until (\d+)$", text, re.M).group(1))
    return failures, until - boottime_ms()


@pytest.fixture
def b(h):
    """The breaker keeps its state in the cache directory: it works where one exists."""
    os.mkdir(h.cache_dir, 0o700)
    return h


def test_transport_failure_opens_then_fails_fast_then_probes(b):
    h = b
    dead = f"https://127.0.0.1:{closed_port()}"
    h.write_conf(servers=[dead])
    expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "transport")
    failures, left = state(h, dead)
    assert failures == 1 and 0 < left <= 1000
    r = h.run("alice", h.token())
    d = expect(r, "PAM_AUTHINFO_UNAVAIL", "circuit_open")
    if TIMED:
        assert int(d["ms"]) < 50, d   # no helper, no connection
    time.sleep(1.1)
    expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "transport")   # the probe
    failures, left = state(h, dead)
    assert failures == 2 and 1000 < left <= 2000   # doubled


def test_5xx_opens_and_a_successful_probe_closes(b):
    h = b
    h.api.add_fault(path=TR, status=503, times=1, body='{"kind":"Status"}')
    h.api.reset_requests()
    expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "http_status")
    expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "circuit_open")
    assert reviews(h) == 1
    time.sleep(1.1)
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")    # half-open: the probe passes
    assert state(h, h.api.url) is None                        # closed
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")
    assert reviews(h) == 3


@pytest.mark.parametrize("status", [429, 500, 502, 504])
def test_429_and_5xx_trip_it(b, status):
    h = b
    h.api.add_fault(path=TR, status=status, times=1, body='{"kind":"Status"}')
    expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "http_status")
    assert state(h, h.api.url)[0] == 1


def test_retry_after_lengthens_the_backoff(b):
    h = b
    h.api.add_fault(path=TR, status=429, times=1, headers={"Retry-After": "3"},
                    body='{"kind":"Status"}')
    expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "http_status")
    failures, left = state(h, h.api.url)
    assert failures == 1 and 2000 < left <= 3000
    time.sleep(1.5)
    expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "circuit_open")
    time.sleep(left / 1000 - 1.5 + 0.1)
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")


def test_retry_after_is_honoured_up_to_300_s(b):
    h = b
    h.api.add_fault(path=TR, status=503, times=1, headers={"Retry-After": "86400"},
                    body='{"kind":"Status"}')
    expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "http_status")
    _, left = state(h, h.api.url)
    assert 299000 < left <= 300000


def test_definite_answers_do_not_trip_it(b):
    """401/403 of our credential and a "not authenticated" are answers, not outages."""
    h = b
    forged = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], key="other")
    expect(h.run("alice", forged), "PAM_AUTH_ERR", "unauthenticated")
    h.api.add_fault(path=TR, status=403, times=1, body='{"kind":"Status"}')
    expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "reviewer_rejected")
    assert state(h, h.api.url) is None
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")


def test_failover_skips_an_open_server(b):
    h = b
    hole = Blackhole()
    try:
        dead = f"https://127.0.0.1:{hole.port}"
        h.write_conf(servers=[dead, h.api.url], connect_timeout=1)
        r = h.run("alice", h.token())
        d = expect(r, "PAM_SUCCESS", "ok")
        assert d["server"] == h.api.url
        slow = r.elapsed
        r = h.run("alice", h.token())
        expect(r, "PAM_SUCCESS", "ok")
        if TIMED:
            assert slow >= 0.9 and r.elapsed < slow - 0.5, (slow, r.elapsed)
    finally:
        hole.close()


def test_one_probe_at_a_time(b):
    """When the backoff ends one login probes the (slow) server; another login meanwhile is
    refused at once instead of waiting too."""
    h = b
    h.api.add_fault(path=TR, status=503, times=1, body='{"kind":"Status"}')
    expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "http_status")
    time.sleep(1.1)
    h.api.add_fault(path=TR, latency_ms=2000, times=1)
    prober = h.spawn("alice", [h.token()], "probe")
    time.sleep(0.7)   # the prober holds the probe lock by now
    r = h.run("alice", h.token())
    d = expect(r, "PAM_AUTHINFO_UNAVAIL", "circuit_open")
    status, codes, decisions = h.collect(prober)
    assert status == 0 and codes == ["PAM_SUCCESS"], (codes, decisions)
    assert decisions[0]["reason"] == "ok"
    if TIMED:
        assert int(d["ms"]) < 500, d


def test_state_is_shared_by_every_process_and_tampering_closes_it(b):
    """A state file that fails its MAC counts as no failure (the server is asked)."""
    h = b
    h.api.add_fault(path=TR, status=503, times=1, body='{"kind":"Status"}')
    expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "http_status")
    name = [n for n in os.listdir(h.cache_dir) if n.startswith("b-")]
    assert len(name) == 1
    path = os.path.join(h.cache_dir, name[0])
    text = open(path).read().replace("failures 1", "failures 9")
    with open(path, "w") as f:
        f.write(text)
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")


def test_without_a_cache_directory_there_is_no_breaker(h):
    dead = f"https://127.0.0.1:{closed_port()}"
    h.write_conf(servers=[dead])
    for _ in range(2):
        expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "transport")
    assert not os.path.lexists(h.cache_dir)


def test_tool_check_sees_the_open_circuit(b):
    h = b
    dead = f"https://127.0.0.1:{closed_port()}"
    h.write_conf(servers=[dead])
    expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "transport")
    tok = h.token()
    proc = subprocess.run(h.tool_command(["check", "--conf", h.conf, "--helper", h.helper]),
                          input=tok, capture_output=True, text=True, env=h.tool_env())
    h.captured += [proc.stdout, proc.stderr]
    assert proc.returncode == 2, proc
    assert "circuit_open" in proc.stdout, proc
