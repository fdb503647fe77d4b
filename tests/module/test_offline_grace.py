"""Bounded offline grace (docs/design.md §6.5, docs/security.md §1): with every server down
(transport, timeout, 5xx, open circuit) a token is let in only when it verified locally with
keys fetched within offline_grace, is unexpired, and this host positively reviewed a token of
the same ServiceAccount uid within offline_grace, and the rules map it to the user now. The
decision is "allow ... reason=offline_grace" and the session gets K8S_OFFLINE=1; each test
below takes one condition away and asserts the outage's own reason instead."""
import os
import shutil
import time

import pytest

from harness import AUDIENCE
from listeners import closed_port

TR = "/apis/authentication.k8s.io/v1/tokenreviews"
GRACE = 300


def expect(r, code, reason):
    d = r.decision()
    assert d is not None, r
    assert (r.code, d["reason"]) == (code, reason), r
    return d


def conf(h, grace=GRACE, **kw):
    h.write_conf(local_verify=None, extra=f"offline_grace = {grace}", **kw)


@pytest.fixture
def g(h):
    """offline_grace = 300 and one positive review of pam/pam-user on this host."""
    conf(h)
    expect(h.run("alice", h.token(), acct=True), "PAM_SUCCESS", "ok")
    return h


def outage(h):
    h.api.add_fault(path=TR, status=503, body='{"kind":"Status"}')


def test_allowed_offline_with_k8s_offline(g):
    h = g
    outage(h)
    r = h.run("alice", h.token(), acct=True)
    d = expect(r, "PAM_SUCCESS", "offline_grace")
    assert d["verdict"] == "allow" and d["sa"] == "pam/pam-user", d
    assert r.env.get("K8S_OFFLINE") == "1" and r.env.get("K8S_SERVICEACCOUNT") == "pam/pam-user"
    assert r.acct == "PAM_SUCCESS"
    # the next login meets the open circuit: still an outage, still graced, no request
    h.api.reset_requests()
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "offline_grace")
    assert h.api.requests()["counts"].get(TR, 0) == 0


def test_online_login_has_no_k8s_offline(g):
    r = g.run("alice", g.token())
    expect(r, "PAM_SUCCESS", "ok")
    assert "K8S_OFFLINE" not in r.env


def test_never_with_another_server_list(g):
    """The record of a review and the key set are bound to the servers they came from (like
    cache entries): with another server list there are no keys to verify the token with (the
    failed fetch of them opens that server's circuit), so no grace."""
    h = g
    conf(h, servers=[f"https://127.0.0.1:{closed_port()}"])
    d = expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "circuit_open")
    assert "no offline grace: the token was not verified locally" in d["detail"], d


def test_allowed_when_one_server_is_unreachable_and_the_other_fails(h):
    """Two servers, the first refusing connections; the review goes through the second;
    then it answers 503 too: every server is down."""
    dead = f"https://127.0.0.1:{closed_port()}"
    conf(h, servers=[dead, h.api.url])
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")
    outage(h)
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "offline_grace")


def test_off_by_default(h):
    h.write_conf(local_verify=None)
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")
    outage(h)
    expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "http_status")


def test_never_after_not_authenticated(g):
    h = g
    # a definite "no" from the server: the deleted ServiceAccount's next token is refused
    tok = h.token()
    h.api.delete_sa("pam", "pam-user")
    expect(h.run("alice", tok), "PAM_AUTH_ERR", "unauthenticated")


def test_never_after_403(g):
    h = g
    h.api.add_fault(path=TR, status=403, body='{"kind":"Status"}')
    expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "reviewer_rejected")


def test_never_for_a_forged_token(g):
    h = g
    outage(h)
    kid = h.api.set_config()["kid"]
    forged = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], key="other", kid=kid)
    expect(h.run("alice", forged), "PAM_AUTH_ERR", "bad_signature")


def test_never_for_an_expired_token(g):
    """Expired by 20 s: within kube's leeway the local check passes, offline grace does not."""
    h = g
    outage(h)
    tok = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], exp_offset=-20)
    d = expect(h.run("alice", tok), "PAM_AUTHINFO_UNAVAIL", "http_status")
    assert "the token has expired" in d["detail"], d


def test_never_without_a_review_of_that_serviceaccount(g):
    h = g
    outage(h)
    d = expect(h.run("bob", h.token(ns="team-a", name="bob")), "PAM_AUTHINFO_UNAVAIL",
               "http_status")
    assert "no positive review" in d["detail"], d


def test_never_when_the_review_is_older_than_the_grace(h):
    conf(h, grace=2)
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")
    time.sleep(2.2)
    outage(h)
    d = expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "http_status")
    assert "keys are older" in d["detail"] or "no positive review" in d["detail"], d


def test_never_when_the_keys_are_older_than_the_grace(h):
    """A fresh review, but keys fetched before the grace began."""
    conf(h, grace=2)
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")   # keys fetched now
    time.sleep(2.2)
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")   # review now, keys 2.2 s old
    outage(h)
    d = expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "http_status")
    assert "keys are older" in d["detail"], d


def test_never_when_the_rules_no_longer_map_it(g):
    h = g
    conf(h, rules=["map serviceaccount:pam/pam-user bob"])
    outage(h)
    expect(h.run("alice", h.token()), "PAM_AUTH_ERR", "not_mapped")


def test_never_when_a_server_has_not_failed(g):
    """Only one server failing of two: the other's answer is the authority."""
    h = g
    dead = f"https://127.0.0.1:{closed_port()}"
    conf(h, servers=[h.api.url, dead])
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")
    h.api.add_fault(path=TR, status=403, body='{"kind":"Status"}')
    d = expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "transport")
    assert "a server has not failed" in d["detail"], d


def test_flush_of_the_serviceaccount_ends_its_grace(g):
    h = g
    import subprocess
    proc = subprocess.run(h.tool_command(["cache", "flush", "--conf", h.conf,
                                          "--serviceaccount", "pam/pam-user"]),
                          capture_output=True, text=True, env=h.tool_env())
    assert proc.returncode == 0, proc
    outage(h)
    d = expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "http_status")
    assert "no positive review" in d["detail"], d


def test_requires_local_verification(h):
    h.write_conf(local_verify="no", extra="offline_grace = 60")
    r = h.run("alice", h.token())
    assert r.code == "PAM_SERVICE_ERR", r
    assert any("offline_grace: requires local_verify" in l for l in r.log_lines()), r.log_lines()
