"""README promises that had no test of their own, each through the real libpam: legacy
tokens, the fail delay, use_first_pass/try_first_pass, PAM_AUTHTOK never set, the two
`debug` lines, log priorities, pam_sm_acct_mgmt, conversation failures and the reasons
config, nomem and system (the helper's own failures are in test_helper.py)."""
import base64
import errno
import os
import re
import uuid

import pytest

from harness import AUDIENCE, pam_module_dir

TR = "/apis/authentication.k8s.io/v1/tokenreviews"
# the test API server's own audience (tests/apiserver/config.py): legacy tokens are valid for it
API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
PAMDIR = pam_module_dir()
PAM_EXEC = os.path.join(PAMDIR, "pam_exec.so")
PERMIT = os.path.join(PAMDIR, "pam_permit.so")
DENY = os.path.join(PAMDIR, "pam_deny.so")
FAIL_DELAY_USEC = 2_000_000


def reviews(h):
    return h.api.requests()["counts"].get(TR, 0)


def assert_outcome(r, code, reason):
    assert r.code == code, r
    d = r.decision()
    assert d is not None, r
    assert d["reason"] == reason, r
    assert d["verdict"] == ("allow" if code == "PAM_SUCCESS" else "deny"), r


def priority_of_decision(r):
    found = re.findall(r"^syslog (\d) pam_k8stoken\S* (?:allow|deny) ", r.log, re.M)
    assert len(found) == 1, r
    return int(found[0])


# ---------------------------------------------------------------- legacy tokens


def legacy_token(h, name="pam-user"):
    """A real legacy token: a kubernetes.io/service-account-token Secret, filled in by the
    test API server's token controller (no exp, no aud)."""
    h.ensure_sa("pam", name)
    secret = "legacy-" + uuid.uuid4().hex[:8]
    status, obj = h.api.call("POST", "/api/v1/namespaces/pam/secrets", {
        "metadata": {"name": secret, "annotations": {"kubernetes.io/service-account.name": name}},
        "type": "kubernetes.io/service-account-token"})
    assert status == 201, obj
    token = base64.b64decode(obj["data"]["token"]).decode()
    h.secrets.append(token)
    return token


def test_legacy_token_refused_before_anything_is_sent(h):
    token = legacy_token(h)
    h.api.reset_requests()
    r = h.run("alice", token)
    assert_outcome(r, "PAM_AUTH_ERR", "legacy_token")
    assert re.fullmatch(r"[0-9a-f]{12}", r.decision()["fp"])
    assert reviews(h) == 0
    assert priority_of_decision(r) == 5


@pytest.mark.parametrize("value", ["no", "false"])
def test_legacy_token_refused_unless_allowed(h, value):
    h.write_conf(extra=f"allow_legacy_tokens = {value}", audiences=(API_AUDIENCE,))
    token = legacy_token(h)
    h.api.reset_requests()
    assert_outcome(h.run("alice", token), "PAM_AUTH_ERR", "legacy_token")
    assert reviews(h) == 0


def test_legacy_token_reviewed_with_allow_legacy_tokens(h):
    """With allow_legacy_tokens = yes the token goes to the API server, which decides: it
    is valid for the server's own audience only."""
    token = legacy_token(h)
    h.write_conf(extra="allow_legacy_tokens = yes", audiences=(API_AUDIENCE,))
    h.api.reset_requests()
    assert_outcome(h.run("alice", token), "PAM_SUCCESS", "ok")
    assert reviews(h) == 1
    h.write_conf(extra="allow_legacy_tokens = yes")          # audience pam-test
    assert_outcome(h.run("alice", token), "PAM_AUTH_ERR", "unauthenticated")
    assert reviews(h) == 2


# ---------------------------------------------------------------- fail delay


@pytest.mark.parametrize("case", ["denied", "unavailable", "not-a-token", "bad-config"])
def test_two_second_fail_delay_on_failure(h, case):
    """The module asks libpam for 2 s; libpam spreads what it reports over 0.5 to 1.5
    times that (pam_delay.c), so the bounds are those."""
    token = h.token()
    if case == "denied":
        r = h.run("bob", token)
    elif case == "unavailable":
        h.api.add_fault(path=TR, status=503, times=1)
        r = h.run("alice", token)
    elif case == "not-a-token":
        r = h.run("alice", "hunter2")
    else:
        h.write_conf(extra="no_such_key = 1")
        r = h.run("alice", token)
    assert r.code != "PAM_SUCCESS", r
    assert r.faildelay is not None, r
    assert FAIL_DELAY_USEC * 0.5 <= r.faildelay <= FAIL_DELAY_USEC * 1.5, r.faildelay




# ---------------------------------------------------------------- use_first_pass / try_first_pass


def exec_authtok_stack(h, args, first=True):
    """pam_exec with expose_authtok prompts "Password: " when PAM_AUTHTOK is unset and sets
    it from the answer: before the module it plays the earlier module (pam_unix) that set
    PAM_AUTHTOK; after it, it shows whether the module set PAM_AUTHTOK (it prompts only if
    the module did not)."""
    out = os.path.join(h.tmp, "exposed")
    script = os.path.join(h.tmp, "expose.sh")
    with open(script, "w") as f:
        f.write(f"#!/bin/sh\ncat > {out}\n")
    os.chmod(script, 0o700)
    exec_line = f"auth optional {PAM_EXEC} expose_authtok quiet {script}"
    h.write_service(args=args)
    module = f"auth required {h.module_line()}"
    h.write_service(stack=[exec_line, module] if first else [module, exec_line])
    return out


@pytest.mark.parametrize("args", ["use_first_pass", "try_first_pass"])
def test_first_pass_takes_the_earlier_modules_authtok(h, args):
    exec_authtok_stack(h, args)
    r = h.run("alice", h.token())
    assert_outcome(r, "PAM_SUCCESS", "ok")
    assert r.prompts == ["off Password: "], r.prompts       # no prompt of our own


def test_use_first_pass_without_a_token_fails_without_prompting(h):
    h.write_service(args="use_first_pass")
    h.api.reset_requests()
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTH_ERR", r
    assert r.prompts == []
    assert r.decision() is None and reviews(h) == 0
    assert re.search(r"^syslog 5 pam_k8stoken\S* no token: Authentication failure$", r.log, re.M), r


def test_try_first_pass_without_a_token_prompts(h):
    h.write_service(args="try_first_pass")
    r = h.run("alice", h.token())
    assert_outcome(r, "PAM_SUCCESS", "ok")
    assert r.prompts == ["off Kubernetes token: "]


@pytest.mark.parametrize("answer", ["token", "password"])
def test_the_module_never_sets_pam_authtok(h, answer):
    """pam_exec after the module prompts for a password only if PAM_AUTHTOK is unset."""
    out = exec_authtok_stack(h, "", first=False)
    token = h.token() if answer == "token" else "hunter2"
    r = h.run("alice", [token, "second answer"])
    assert r.prompts == ["off Kubernetes token: ", "off Password: "], r.prompts
    with open(out) as f:
        assert f.read().rstrip("\0") == "second answer"
    expect = ("PAM_SUCCESS", "ok") if answer == "token" else ("PAM_AUTH_ERR", "not_jwt")
    assert_outcome(r, *expect)


# ---------------------------------------------------------------- debug, priorities


def test_debug_adds_exactly_its_two_lines(h):
    token = h.token()
    plain = h.run("alice", token).log_lines()
    h.write_service(args="debug")
    r = h.run("alice", token)
    debug = r.log_lines()
    assert len(debug) == len(plain) + 2, (plain, debug)
    rule_line = open(h.conf).read().splitlines().index("map serviceaccount:pam/pam-user alice") + 1
    assert debug[0] == f"conf={h.conf} helper={h.helper} servers=1 audiences=1"
    assert debug[1] == f"reviewed=yes http=201 groups=3 rule_line={rule_line} local_uid=1001"
    # the decision line itself is the same but for the time it took
    strip = lambda line: re.sub(r" ms=\d+", "", line)   # noqa: E731
    assert [strip(l) for l in debug[2:]] == [strip(l) for l in plain]
    assert re.findall(r"^syslog 7 ", r.log, re.M) == ["syslog 7 "] * 2   # LOG_DEBUG


def test_debug_lines_for_a_local_refusal(h):
    h.write_service(args="debug")
    r = h.run("nosuchuser", h.token())
    assert_outcome(r, "PAM_USER_UNKNOWN", "unknown_user")
    assert r.log_lines()[1] == "reviewed=no http=0 groups=0 rule_line=0 local_uid=-1"


@pytest.mark.parametrize("case,outcome,priority", [
    ("allow", ("PAM_SUCCESS", "ok"), 6),                       # info
    ("not-mapped", ("PAM_AUTH_ERR", "not_mapped"), 5),         # notice: denials
    ("unauthenticated", ("PAM_AUTH_ERR", "unauthenticated"), 5),
    ("unknown-user", ("PAM_USER_UNKNOWN", "unknown_user"), 5),
    ("not-a-token", ("PAM_AUTH_ERR", "not_jwt"), 5),
    ("outage", ("PAM_AUTHINFO_UNAVAIL", "http_status"), 3),   # err: operators must act
])
def test_log_priorities(h, case, outcome, priority):
    user, token = "alice", h.token()
    if case == "not-mapped":
        user = "bob"
    elif case == "unauthenticated":
        token = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], key="other")
    elif case == "unknown-user":
        user = "nosuchuser"
    elif case == "not-a-token":
        token = "hunter2"
    elif case == "outage":
        h.api.add_fault(path=TR, status=503, times=1)
    r = h.run(user, token, rhost="192.0.2.7")
    assert_outcome(r, *outcome)
    assert priority_of_decision(r) == priority


def field_names(line):
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line)
    return [word.split("=", 1)[0] for word in unquoted.split()[1:]]


def test_decision_line_fields_in_order(h):
    """README "Log line": user sa uid credential [pod] cache access server ms fp reason rhost
    [detail]."""
    r = h.run("alice", h.token(), rhost="192.0.2.7")
    line = [l for l in r.log_lines() if l.startswith("allow ")][0]
    assert field_names(line) == ["user", "sa", "uid", "credential", "cache", "access", "server",
                                 "ms", "fp", "reason", "rhost"], line
    h.api.add_fault(path=TR, status=503, times=1)
    r = h.run("alice", h.token(), rhost="192.0.2.7")
    line = [l for l in r.log_lines() if l.startswith("deny ")][0]
    assert field_names(line) == ["user", "cache", "access", "server", "ms", "fp", "reason",
                                 "rhost", "detail"], line


# ---------------------------------------------------------------- pam_sm_acct_mgmt


def acct_probe_stack(h):
    """An account stack that tells the module's three answers apart:
    PAM_IGNORE skips pam_deny and ends in pam_permit (PAM_SUCCESS); PAM_SUCCESS goes on
    to pam_deny (PAM_AUTH_ERR); PAM_PERM_DENIED stays PAM_PERM_DENIED."""
    line = h.module_line()
    h.write_service(stack=[f"auth required {line}",
                           f"account [ignore=1 success=ok default=bad] {line}",
                           f"account required {DENY}", f"account required {PERMIT}"])


PROBE = {"PAM_SUCCESS": "module ignored", "PAM_AUTH_ERR": "module succeeded",
         "PAM_PERM_DENIED": "module denied"}


def test_acct_mgmt_succeeds_for_the_user_it_authenticated(h):
    acct_probe_stack(h)
    r = h.run("alice", h.token(), acct=True)
    assert_outcome(r, "PAM_SUCCESS", "ok")
    assert PROBE[r.acct] == "module succeeded", r


@pytest.mark.parametrize("case", ["failed", "other-module"])
def test_acct_mgmt_ignores_what_it_did_not_authenticate(h, case):
    acct_probe_stack(h)
    if case == "failed":
        r = h.run("bob", h.token(), acct=True)
        assert_outcome(r, "PAM_AUTH_ERR", "not_mapped")
    else:   # the module was not in the auth stack that succeeded
        line = h.module_line()
        h.write_service(stack=[f"auth required {PERMIT}",
                               f"account [ignore=1 success=ok default=bad] {line}",
                               f"account required {DENY}", f"account required {PERMIT}"])
        r = h.run("alice", [], acct=True)
        assert r.code == "PAM_SUCCESS" and r.decision() is None, r
    assert PROBE[r.acct] == "module ignored", r


@pytest.mark.parametrize("new_user", ["bob", "ali", "alicex", "", "Alice"])
def test_acct_mgmt_refuses_a_changed_user(h, new_user):
    """Another user, a prefix of the user, an extension of it, the empty name."""
    acct_probe_stack(h)
    r = h.run("alice", h.token(), acct=True, set_user=new_user)
    assert_outcome(r, "PAM_SUCCESS", "ok")
    assert re.search(r"^set_user 0 ", r.stdout, re.M), r
    assert r.acct == "PAM_PERM_DENIED", r
    assert re.search(r"^syslog 3 pam_k8stoken\S* account: user changed since the token was "
                     r"checked$", r.log, re.M), r


def test_acct_mgmt_same_name_set_again_is_fine(h):
    acct_probe_stack(h)
    r = h.run("alice", h.token(), acct=True, set_user="alice")
    assert PROBE[r.acct] == "module succeeded", r


# ---------------------------------------------------------------- conversation failures


@pytest.mark.parametrize("fail,code,text", [
    ("conv_err", "PAM_CONV_ERR", "Conversation error"),
    ("conv_again", "PAM_INCOMPLETE", "Application needs to call libpam again"),
    ("buf_err", "PAM_BUF_ERR", "Memory buffer error"),
    ("system_err", "PAM_SYSTEM_ERR", "System error"),
])
def test_conversation_failure_at_the_token_prompt(h, fail, code, text):
    h.api.reset_requests()
    r = h.run("alice", h.token(), conv_fail=fail)
    assert r.code == code, r
    assert r.decision() is None and reviews(h) == 0, r
    assert re.search(rf"^syslog 5 pam_k8stoken\S* no token: {text}$", r.log, re.M), r


@pytest.mark.parametrize("fail,code", [("conv_err", "PAM_CONV_ERR"),
                                       ("conv_again", "PAM_INCOMPLETE")])
def test_conversation_failure_at_a_part_prompt(h, fail, code):
    """The second prompt fails: the unfinished first part is dropped, nothing is sent."""
    token = h.token()
    h.api.reset_requests()
    r = h.run("alice", [token[:500], token[500:]], conv_fail=f"{fail}:2")
    assert r.code == code, r
    assert len(r.prompts) == 2 and r.decision() is None and reviews(h) == 0, r


@pytest.mark.parametrize("fail,code", [("conv_again", "PAM_INCOMPLETE"),
                                       ("conv_err", "PAM_USER_UNKNOWN")])
def test_conversation_failure_when_asking_for_the_user(h, fail, code):
    r = h.run(None, h.token(), conv_fail=fail)
    assert r.code == code, r
    assert r.decision() is None, r
    assert re.search(r"^syslog 5 pam_k8stoken\S* cannot determine the user: ", r.log, re.M), r


# ---------------------------------------------------------------- reasons config, system, nomem


def test_reason_system_when_the_account_lookup_fails(h):
    """An NSS error (not "no such user") is PAM_SYSTEM_ERR, reason system, priority err;
    nothing is sent."""
    h.api.reset_requests()
    r = h.run("alice", h.token(), extra_env={"KT_TEST_GETPWNAM_ERRNO": str(errno.EIO)})
    assert_outcome(r, "PAM_SYSTEM_ERR", "system")
    assert priority_of_decision(r) == 3
    assert reviews(h) == 0



def test_reason_nomem_when_the_identity_cannot_be_exported(h):
    """K8S_GROUPS longer than the module's 3 KiB: the allowed identity cannot be put into
    the PAM environment, so the login is refused (PAM_BUF_ERR, nomem), and no K8S_*
    variable is left behind."""
    groups = ["system:serviceaccounts", "system:serviceaccounts:pam", "system:authenticated"]
    groups += [f"g{i:03d}-" + "x" * 60 for i in range(60)]
    body = ('{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{},'
            '"spec":{},"status":{"authenticated":true,"user":{"username":'
            '"system:serviceaccount:pam:pam-user","uid":"8f5660ff-e115-44f9-9aeb-e060246c6860",'
            '"groups":[' + ",".join(f'"{g}"' for g in groups) + ']},"audiences":["'
            + AUDIENCE + '"]}}\n')
    h.api.add_fault(path=TR, status=201, body=body, content_type="application/json", times=1)
    h.write_conf(rules=["map group:g059-* alice"])
    r = h.run("alice", h.token(), acct=True)
    assert_outcome(r, "PAM_BUF_ERR", "nomem")
    assert r.env == {}, r
    assert priority_of_decision(r) == 3
