"""PAM stack semantics of the documented stacks, through the real libpam (docs/security.md H04, H06).

H04: with the faillock stack of conf/pam.d/faillock-k8stoken an API server outage
(PAM_AUTHINFO_UNAVAIL) denies the login but is NOT counted by pam_faillock, while a wrong
token (or a password typed at the token prompt) is; a success resets the count. The naive
stack (every non-success counted) locks users out during an outage: documented, and shown.

H06: the token-only stacks of conf/pam.d/sshd-k8stoken and sudo-k8stoken (`[success=done
default=die]` and `sufficient`, each followed by `requisite pam_deny.so`) end in a denial for
every result but PAM_SUCCESS, never in success.

The control values are the ones in the shipped example files: the tests check that those
files contain them, so the examples cannot drift from what is tested here.
"""
import os
import re
import socket
import subprocess

import pytest

from harness import ROOT, pam_module_dir

PAMDIR = pam_module_dir()
FAILLOCK = os.path.join(PAMDIR, "pam_faillock.so")
DENY = os.path.join(PAMDIR, "pam_deny.so")
PERMIT = os.path.join(PAMDIR, "pam_permit.so")
CONF_PAMD = os.path.join(ROOT, "conf", "pam.d")
TR = "/apis/authentication.k8s.io/v1/tokenreviews"

# The module's control in the documented faillock stack, and the naive one (counts outages).
FAILLOCK_CONTROL = "[success=1 authinfo_unavail=die service_err=die ignore=ignore default=bad]"
NAIVE_CONTROL = "[success=1 default=bad]"


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def example_lines(name, commented=False):
    """The auth lines of conf/pam.d/NAME (with commented=True also "#auth" ones, without
    the "#"), whitespace collapsed."""
    lines = []
    with open(os.path.join(CONF_PAMD, name)) as f:
        for line in f:
            line = line.strip()
            if commented and line.startswith("#auth"):
                line = line[1:]
            if line.startswith("auth"):
                lines.append(" ".join(line.split()))
    return lines


def faillock_stack(h, directory, control):
    fl = f"{FAILLOCK} dir={directory} deny=10 unlock_time=600"
    return [f"auth requisite {fl} preauth",
            f"auth {control} {h.module_line()}",
            f"auth [default=die] {fl} authfail",
            f"auth sufficient {fl} authsucc",
            f"auth requisite {DENY}"]


def failures(directory, user="alice"):
    """Number of failure records `faillock` shows for the user."""
    p = subprocess.run(["faillock", "--dir", directory, "--user", user], capture_output=True,
                       text=True, check=True)
    return len(re.findall(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", p.stdout, re.M))


def outage(h, kind):
    if kind == "unreachable":
        h.write_conf(servers=[f"https://127.0.0.1:{closed_port()}"])
    else:
        h.api.add_fault(status=503, times=None)


@pytest.fixture
def fl_dir(h):
    d = os.path.join(h.tmp, "faillock")
    os.mkdir(d, 0o700)
    return d


def test_documented_faillock_stack_is_the_tested_one():
    lines = example_lines("faillock-k8stoken")
    assert any(l.startswith("auth requisite pam_faillock.so preauth") for l in lines), lines
    assert f"auth {FAILLOCK_CONTROL} pam_k8stoken.so" in " | ".join(lines), lines
    assert any(l.startswith("auth [default=die] pam_faillock.so authfail") for l in lines)
    assert any(l.startswith("auth sufficient pam_faillock.so authsucc") for l in lines)
    assert lines[-1] == "auth requisite pam_deny.so"


@pytest.mark.parametrize("kind", ["unreachable", "http-503"])
def test_h04_outage_denies_but_is_not_counted(h, fl_dir, kind):
    h.write_service(stack=faillock_stack(h, fl_dir, FAILLOCK_CONTROL))
    outage(h, kind)
    token = h.token()
    reason = {"unreachable": "transport", "http-503": "http_status"}[kind]
    for _ in range(4):
        r = h.run("alice", token)
        assert (r.code, r.decision()["reason"]) == ("PAM_AUTHINFO_UNAVAIL", reason), r
    assert failures(fl_dir) == 0


def test_h04_wrong_tokens_and_passwords_are_counted(h, fl_dir):
    h.write_service(stack=faillock_stack(h, fl_dir, FAILLOCK_CONTROL))
    other = h.token(name="other-user")
    for _ in range(3):
        r = h.run("alice", other)
        assert (r.code, r.decision()["reason"]) == ("PAM_AUTH_ERR", "not_mapped"), r
    assert failures(fl_dir) == 3
    # a password typed at the token prompt: refused, and faillock counts it
    r = h.run("alice", "hunter2")
    assert (r.code, r.decision()["reason"]) == ("PAM_AUTH_ERR", "not_jwt"), r
    assert failures(fl_dir) == 4


def test_h04_success_resets_and_lockout_still_applies(h, fl_dir):
    h.write_service(stack=faillock_stack(h, fl_dir, FAILLOCK_CONTROL))
    other = h.token(name="other-user")
    for _ in range(2):
        h.run("alice", other)
    assert failures(fl_dir) == 2
    r = h.run("alice", h.token())
    assert r.code == "PAM_SUCCESS", r
    assert failures(fl_dir) == 0
    # lock alice (deny=10): then even a valid token is refused, and no review is sent
    for _ in range(10):
        h.run("alice", other)
    h.api.reset_requests()
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTH_ERR", r       # pam_faillock preauth: locked
    assert r.decision() is None, r           # the module was never asked
    assert h.api.requests()["counts"].get(TR, 0) == 0


def test_h04_naive_stack_locks_users_out_during_an_outage(h, fl_dir):
    """What the documentation warns about: default=bad alone counts every outage."""
    h.write_service(stack=faillock_stack(h, fl_dir, NAIVE_CONTROL))
    outage(h, "http-503")
    token = h.token()
    for _ in range(3):
        r = h.run("alice", token)
        assert (r.code, r.decision()["reason"]) == ("PAM_AUTHINFO_UNAVAIL", "http_status"), r
    assert failures(fl_dir) == 3


TOKEN_ONLY = [  # (example file, control of the module line)
    ("sshd-k8stoken", "[success=done default=die]"),
    ("sshd-k8stoken", "sufficient"),
    ("sudo-k8stoken", "[success=done default=die]"),
    ("sudo-k8stoken", "sufficient"),
]


def answer(h, case):
    if case == "valid":
        return "alice", h.token()
    if case == "other-sa":
        return "alice", h.token(name="other-user")
    if case == "not-a-token":
        return "alice", "hunter2"
    if case == "empty":
        return "alice", ""
    if case == "unknown-user":
        return "nosuchuser", h.token()
    if case in ("unreachable", "http-503"):
        outage(h, case)
        return "alice", h.token()
    if case == "bad-config":
        h.write_conf(extra="no_such_key = 1")
        return "alice", h.token()
    raise AssertionError(case)


H06_MODULE = {  # case: (the module's own result, its reason; None: no decision line)
    "valid": ("PAM_SUCCESS", "ok"), "other-sa": ("PAM_AUTH_ERR", "not_mapped"),
    "not-a-token": ("PAM_AUTH_ERR", "not_jwt"), "empty": ("PAM_AUTH_ERR", "empty_token"),
    "unknown-user": ("PAM_USER_UNKNOWN", "unknown_user"),
    "unreachable": ("PAM_AUTHINFO_UNAVAIL", "transport"),
    "http-503": ("PAM_AUTHINFO_UNAVAIL", "http_status"),
    "bad-config": ("PAM_SERVICE_ERR", None),
}


@pytest.mark.parametrize("example,control", TOKEN_ONLY)

@pytest.mark.parametrize("case", ["valid", "other-sa", "not-a-token", "empty", "unknown-user",
                                  "unreachable", "http-503", "bad-config"])
def test_h06_token_only_stacks_never_fail_open(h, example, control, case):
    documented = example_lines(example, commented=True)
    assert any(l.startswith(f"auth {control} pam_k8stoken.so") for l in documented), \
        f"{example} does not document `auth {control} pam_k8stoken.so`"
    assert "auth requisite pam_deny.so" in documented
    # a pam_permit after pam_deny would turn any fall-through into success: it is never reached
    h.write_service(stack=[f"auth {control} {h.module_line()}", f"auth requisite {DENY}",
                           f"auth required {PERMIT}"])
    user, token = answer(h, case)
    r = h.run(user, token)
    code, reason = H06_MODULE[case]
    d = r.decision()
    if reason is None:
        assert d is None, r
    else:
        assert d is not None and d["reason"] == reason, r
    # [success=done default=die] ends with the module's own result; `sufficient` goes on
    # to `requisite pam_deny.so` on any failure
    expect = code if case == "valid" or control.startswith("[") else "PAM_AUTH_ERR"
    assert r.code == expect, r
