"""End-to-end: a real sshd (tests/lib/sshd.py) with pam_k8stoken, the real OpenSSH client,
the project's askpass helper, a test API server (docs/security.md H01, H02, D03, D07, D09, D10, D11,
E02, L01; docs/design.md §5).

Every test is followed by a scan of sshd's log, sshd's stderr, the module's log, the API server's
logs and the client's output for any 16-character piece of any token (conftest.py).
"""
import os
import re
import time

import pytest

from listeners import CountingListener
import sshd as sshd_mod


AUD = "pam-test"
DENIED = "Permission denied"
SESSION = ("echo SA=$K8S_SERVICEACCOUNT; echo USERNAME=$K8S_USERNAME; echo KUID=$K8S_UID; "
           "echo GROUPS=$K8S_GROUPS; echo CRED=$K8S_CREDENTIAL_ID; echo POD=$K8S_POD_NAME; "
           "echo ID=$(id -u); echo PRELOAD=$LD_PRELOAD; echo WRAPPER=$PAM_WRAPPER")


def session_env(stdout):
    return dict(l.split("=", 1) for l in stdout.splitlines() if "=" in l)


def assert_login(r, user="alice", uid="1001", sa="pam/pam-user", pod=""):
    assert r.returncode == 0, (r.returncode, r.stderr)
    env = session_env(r.stdout)
    assert env["SA"] == sa
    ns, name = sa.split("/")
    assert env["USERNAME"] == f"system:serviceaccount:{ns}:{name}"
    assert env["KUID"] and env["CRED"].startswith("JTI=")
    assert f"system:serviceaccounts:{ns}" in env["GROUPS"].split(",")
    assert env["POD"] == pod
    assert env["ID"] == uid
    # the test preloads (pam_wrapper, nss_wrapper, syslog shim) do not reach the session
    assert env["PRELOAD"] == "" and env["WRAPPER"] == ""
    return env


def assert_denied(r):
    assert r.returncode == 255, (r.returncode, r.stdout, r.stderr)
    assert DENIED in r.stderr
    assert "SA=" not in r.stdout and "K8S=" not in r.stdout


def one_allow(w, user="alice", sa="pam/pam-user"):
    """Exactly one decision in this test so far: allow (reason ok), for user, as sa."""
    ds = w.decisions()
    assert [(d["verdict"], d.get("reason"), d.get("user"), d.get("sa")) for d in ds] == [
        ("allow", "ok", user, sa)], ds
    return ds[0]


def outcomes(w):
    """The module's decisions in this test so far as (verdict, reason) pairs."""
    return [(d["verdict"], d.get("reason")) for d in w.decisions()]


def padded_token(w, length):
    """A token of about `length` characters, padded with an extra claim (signed, valid)."""
    base = len(w.h.mint(namespace="pam", name="pam-user", audiences=[AUD]))
    pad = max(0, (length - base) * 3 // 4)
    return w.h.mint(namespace="pam", name="pam-user", audiences=[AUD],
                    claims_override={"pad": "x" * pad})


# --- logins with every real token shape ---------------------------------------------------------

@pytest.mark.parametrize("shape", ["es256", "rs2048-create-token", "rs2048-pod-bound",
                                   "rs4096-pod-bound", "rs2048-2k"])
def test_keyboard_interactive_every_shape(world_factory, shape):
    """H01: the askpass answers "Kubernetes token: " and each "(part N)" prompt with <= 500
    characters; the session sees the identity (PAM environment -> session environment)."""
    key = {"es256": "es256", "rs4096-pod-bound": "rs256-4096"}.get(shape, "rs256-2048")
    w = world_factory(key)
    pod = ""
    if shape.endswith("pod-bound"):
        tok, pod = w.pod_token(), "web-0"
    elif shape == "rs2048-2k":
        tok = padded_token(w, 2100)
    else:
        tok = w.h.token()
    lo, hi = {"es256": (550, 700), "rs2048-create-token": (800, 1023),
              "rs2048-pod-bound": (1024, 1300), "rs4096-pod-bound": (1350, 1700),
              "rs2048-2k": (2000, 2300)}[shape]
    assert lo <= len(tok) <= hi, len(tok)
    before = w.reviews()
    r = w.ssh("alice", tok, command=SESSION)
    assert_login(r, pod=pod)
    assert w.reviews() - before == 1
    d = one_allow(w)
    assert d["sa"] == "pam/pam-user" and d["user"] == "alice"
    if pod:
        assert d["pod"] == pod
    assert "Accepted keyboard-interactive/pam for alice" in w.logs()[0]
    # sshd logs one "Postponed .../pam" per answered prompt: at least one per 500 characters
    assert w.logs()[0].count("Postponed keyboard-interactive/pam for alice") >= -(-len(tok) // 500)


@pytest.mark.parametrize("key", ["es256", "rs256-2048"])
def test_keyboard_interactive_one_answer(world_factory, key):
    """A token of <= 1,023 characters in a single answer (part size 1,023): no second prompt."""
    w = world_factory(key)
    tok = w.h.token()
    assert len(tok) <= 1023
    r = w.ssh("alice", tok, command=SESSION, part_size=1023)
    assert_login(r)
    one_allow(w)
    assert w.logs()[0].count("Postponed keyboard-interactive/pam for alice") == 1


def test_keyboard_interactive_2k_in_1023_parts(w):
    """H01/D03: a 2 KiB token in parts of 1,023 (the OpenSSH client's limit per answer)."""
    tok = padded_token(w, 2100)
    r = w.ssh("alice", tok, command=SESSION, part_size=1023)
    assert_login(r)
    one_allow(w)


# --- password method ----------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["es256", "rs256-2048"])
def test_password_method_short_token(world_factory, key):
    """H01: the password method carries a token of <= 1,024 characters (here through sshpass on
    ssh's terminal, which passes at most 1,023)."""
    w = world_factory(key)
    tok = w.h.token()
    assert len(tok) <= 1023
    before = w.reviews()
    r = w.ssh_password("alice", tok, command=SESSION)
    assert_login(r)
    assert w.reviews() - before == 1
    one_allow(w)
    assert "Accepted password for alice" in w.logs()[0]


def test_password_method_long_token_openssh_client(w):
    """A pod-bound token (> 1,023) through the OpenSSH client's password prompt: the client
    cuts it at 1,023, sshd answers every further prompt with that same text, the module never
    sees a whole token: denied, no TokenReview."""
    tok = w.pod_token()
    assert len(tok) > 1024
    before = w.reviews()
    r = w.ssh_password("alice", tok, command=SESSION)
    assert_denied(r)
    assert w.reviews() - before == 0
    assert "Failed password for alice" in w.logs()[0]
    assert outcomes(w) == [("deny", "not_jwt")], w.decisions()


def test_password_method_long_token_never_reaches_pam(w):
    """D03: a client without the 1,023 limit (paramiko) sends 1,025+ characters by the password
    method: sshd refuses it itself (MAX_PASSWORD_LEN 1,024) -- PAM is never called."""
    paramiko = pytest.importorskip("paramiko")
    tok = w.pod_token()
    assert len(tok) > 1024
    before = w.reviews()
    t = paramiko.Transport(("127.0.0.1", w.sshd.port))
    try:
        t.start_client(timeout=10)
        with pytest.raises(paramiko.AuthenticationException):
            t.auth_password("alice", tok)
    finally:
        t.close()
    deadline = time.monotonic() + 5
    while "Failed password for alice" not in w.logs()[0] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "Failed password for alice" in w.logs()[0]
    assert w.reviews() - before == 0
    assert w.decisions() == []  # the module did not run at all
    # the same client with a 1,024-character-or-shorter token gets in: the limit is sshd's
    short = w.h.token()
    t = paramiko.Transport(("127.0.0.1", w.sshd.port))
    try:
        t.start_client(timeout=10)
        t.auth_password("alice", short)
        assert t.is_authenticated()
    finally:
        t.close()


# --- denials ------------------------------------------------------------------------------------

def test_wrong_user(w):
    """D09/H01: a token mapped to alice does not log in as bob (the review happens, the mapping
    refuses)."""
    tok = w.h.token()
    before = w.reviews()
    r = w.ssh("bob", tok, command=SESSION)
    assert_denied(r)
    assert w.reviews() - before == 1
    assert outcomes(w) == [("deny", "not_mapped")], w.decisions()
    assert w.decisions()[0]["user"] == "bob" and w.decisions()[0]["sa"] == "pam/pam-user"
    assert "Failed keyboard-interactive/pam for bob" in w.logs()[0]


def test_wrong_audience(w):
    tok = w.h.token(audiences=("https://kubernetes.default.svc",))
    r = w.ssh("alice", tok, command=SESSION)
    assert_denied(r)
    assert outcomes(w) == [("deny", "unauthenticated")], w.decisions()


def test_expired_token(w):
    tok = w.h.mint(namespace="pam", name="pam-user", audiences=[AUD], iat_offset=-7200,
                   nbf_offset=-7200, exp_offset=-3600)
    r = w.ssh("alice", tok, command=SESSION)
    assert_denied(r)
    assert outcomes(w) == [("deny", "unauthenticated")], w.decisions()


def test_deleted_serviceaccount(w):
    """D11: the same token logs in, then is refused once its ServiceAccount is deleted."""
    w.h.ensure_sa("team-ops", "alice")
    tok = w.h.token("team-ops", "alice")
    assert_login(w.ssh("alice", tok, command=SESSION), sa="team-ops/alice")
    w.api.delete_sa("team-ops", "alice")
    r = w.ssh("alice", tok, command=SESSION)
    assert_denied(r)
    assert outcomes(w) == [("allow", "ok"), ("deny", "unauthenticated")], w.decisions()


@pytest.mark.parametrize("user", ["mallory", "root"])
@pytest.mark.parametrize("method", ["keyboard-interactive", "password"])
def test_invalid_user_and_root_get_junk_no_review(w, user, method):
    """H02/D07/D10: for a user sshd does not know, and for root under PermitRootLogin
    prohibit-password, sshd hands PAM the junk password "\\b\\n\\r\\177INCORRECT...": denied
    without a TokenReview, though the client sent a valid token."""
    tok = w.h.token()
    before = w.reviews()
    if method == "password":
        r = w.ssh_password(user, tok, command=SESSION)
    else:
        r = w.ssh(user, tok, command=SESSION, part_size=1023)
    assert_denied(r)
    assert w.reviews() - before == 0
    assert outcomes(w) == [("deny", "not_jwt")], w.decisions()
    log = w.logs()[0]
    if user == "mallory":
        assert "Invalid user mallory" in log
    assert "Accepted" not in log


# --- by hand, on a terminal ---------------------------------------------------------------------

PROMPT = r"Kubernetes token: "
PART2 = r"Kubernetes token \(part 2\)[^\r\n]*: "


def test_pty_keyboard_interactive_typed_in_parts(w):
    """A person pastes a ~930-character token in two pieces at the two prompts."""
    tok = w.h.token()
    code, out, seen = w.pty("alice", [(PROMPT, tok[:500]), (PART2, tok[500:])], command=SESSION)
    assert code == 0, out
    assert len(seen) == 2
    assert "SA=pam/pam-user" in out and "ID=1001" in out
    one_allow(w)


def test_pty_keyboard_interactive_pasted_whole_then_rest(w):
    """A pod-bound token (> 1,023) pasted whole: ssh's terminal prompt keeps 1,023 characters,
    the module says so in its part-2 prompt, and the person pastes the rest."""
    tok = w.pod_token()
    assert len(tok) > 1023
    code, out, seen = w.pty("alice", [(PROMPT, tok), (PART2, tok[1023:])], command=SESSION)
    assert code == 0, out
    assert "part 1 had 1023 characters" in seen[1], seen
    assert "SA=pam/pam-user" in out and "POD=web-0" in out
    one_allow(w)


def test_pty_password_prompt_one_paste(w):
    """The password method on a terminal: a ~930-character token in one paste."""
    tok = w.h.token()
    assert len(tok) <= 1023
    code, out, seen = w.pty("alice", [(r"alice@127\.0\.0\.1's password: ", tok)],
                            method="password", command=SESSION)
    assert code == 0, out
    assert "SA=pam/pam-user" in out
    one_allow(w)


def test_pty_wrong_user_denied(w):
    tok = w.h.token()
    code, out, seen = w.pty("bob", [(PROMPT, tok[:500]), (PART2, tok[500:])], command=SESSION)
    assert code == 255 and DENIED in out, out
    assert "SA=" not in out
    assert outcomes(w) == [("deny", "not_mapped")], w.decisions()


# --- a hostile environment around sshd (E02) ----------------------------------------------------

def test_hostile_environment_of_sshd(e2e_tmp, make_world):
    """E02: sshd (and so the module and its helper) started with proxy, TLS and locale variables
    pointing at traps: both methods still log in, no proxy is contacted, no key log written."""
    proxy = CountingListener()
    tmp = os.path.join(e2e_tmp, "hostile")
    os.makedirs(tmp, exist_ok=True)
    keylog = os.path.join(tmp, "keylog")
    bad = f"http://127.0.0.1:{proxy.port}"
    hostile = {
        "https_proxy": bad, "HTTPS_PROXY": bad, "http_proxy": bad, "ALL_PROXY": bad,
        "all_proxy": f"socks5h://127.0.0.1:{proxy.port}", "NO_PROXY": "", "SSLKEYLOGFILE": keylog,
        "OPENSSL_CONF": os.path.join(tmp, "openssl.cnf"), "SSL_CERT_FILE": "/dev/null",
        "SSL_CERT_DIR": tmp, "CURL_CA_BUNDLE": "/dev/null", "TZ": "Etc/GMT+12", "LANG": "tr_TR.UTF-8",
        "HOME": tmp, "XDG_CONFIG_HOME": tmp, "LOCALDOMAIN": "evil.example",
        "RES_OPTIONS": "ndots:15", "HOSTALIASES": os.path.join(tmp, "hosts"),
    }
    with open(hostile["OPENSSL_CONF"], "w") as f:
        f.write("openssl_conf = x\n[x]\nssl_conf = y\n[y]\nsystem_default = z\n[z]\n"
                "MinProtocol = TLSv1\nCipherString = NULL\n")
    w = make_world("hostile", extra_env=hostile)
    try:
        w.begin_test()
        tok = w.h.token()
        assert_login(w.ssh("alice", tok, command=SESSION))
        assert_login(w.ssh_password("alice", tok, command=SESSION))
        assert_denied(w.ssh("bob", tok, command=SESSION))
        assert proxy.connections == 0
        assert not os.path.exists(keylog)
        assert outcomes(w) == [("allow", "ok"), ("allow", "ok"), ("deny", "not_mapped")], \
            w.decisions()
        w.end_test()
    finally:
        w.stop()
        proxy.close()


# --- the harness itself -------------------------------------------------------------------------

def test_module_log_is_captured_for_both_methods(w):
    """The syslog shim sees the module's lines for keyboard-interactive too (pam_wrapper's own
    pam_syslog loses them there: sshd empties the PAM child's environment)."""
    tok = w.h.token()
    assert_login(w.ssh("alice", tok, command=SESSION, part_size=1023))
    assert_login(w.ssh_password("alice", tok, command=SESSION))
    assert outcomes(w) == [("allow", "ok"), ("allow", "ok")], w.decisions()
    pids = re.findall(r"^syslog \d+ \[(\d+)\] allow ", w.logs()[2], re.M)
    assert len(pids) == 2


# --- the password method with k8stoken-askpass (K8STOKEN_ANSWER_PASSWORD=1) ---------------------

OPT_IN = {"K8STOKEN_ANSWER_PASSWORD": "1"}
NOT_ANSWERED_HINT = ("k8stoken-askpass: not a \"Kubernetes token\" prompt; not answering it (a "
                     "password prompt gets the token only with K8STOKEN_ANSWER_PASSWORD=1)")


def too_long(length):
    return (f"k8stoken-askpass: the token has {length} characters, but a password prompt of ssh "
            "passes at most 1023 in its one answer; not answering.")


@pytest.mark.parametrize("key", ["es256", "rs256-2048"])
def test_password_method_askpass_opt_in(world_factory, key):
    """ssh's "alice@127.0.0.1's password: " answered by the real askpass with the whole token
    (it fits in one answer): logged in, one TokenReview."""
    w = world_factory(key)
    tok = w.h.token()
    assert len(tok) <= 1023
    before = w.reviews()
    r = w.ssh("alice", tok, command=SESSION, method="password", extra_env=OPT_IN)
    assert_login(r)
    assert r.stderr == ""
    assert w.reviews() - before == 1
    one_allow(w)
    assert "Accepted password for alice" in w.logs()[0]


def test_password_method_askpass_token_too_long(w):
    """A pod-bound token (> 1,023 characters) does not fit the password method: the askpass
    refuses with a message naming the limit and ssh gives up without sending a password (the
    module never runs), no TokenReview."""
    tok = w.pod_token()
    assert len(tok) > 1023
    before = w.reviews()
    r = w.ssh("alice", tok, command=SESSION, method="password", extra_env=OPT_IN)
    assert_denied(r)
    assert too_long(len(tok)) in r.stderr, r.stderr
    assert w.reviews() - before == 0
    assert outcomes(w) == [], w.decisions()
    assert "Failed none for alice" in w.logs()[0]
    assert "password for alice" not in w.logs()[0]


def test_password_method_askpass_without_opt_in(w):
    """Without the opt-in the askpass still refuses ssh's password prompt (as before)."""
    tok = w.h.token()
    assert len(tok) <= 1023
    before = w.reviews()
    r = w.ssh("alice", tok, command=SESSION, method="password")
    assert_denied(r)
    assert NOT_ANSWERED_HINT in r.stderr, r.stderr
    assert w.reviews() - before == 0
    assert outcomes(w) == [], w.decisions()            # no password was sent
    assert "password for alice" not in w.logs()[0]


@pytest.fixture(scope="module")
def profile_world(make_world):
    """sshd whose auth stack is the pam-auth-update profile's common-auth: pam_unix (asks
    "Password: "), then pam_k8stoken use_first_pass (debian/pam-configs/k8stoken)."""
    world = make_world("profile")
    world.sshd.write_service(stack=sshd_mod.profile_auth_stack(world.h.module_line()) + [
        f"account required {sshd_mod.PAMDIR}/pam_permit.so",
        f"password required {sshd_mod.PAMDIR}/pam_deny.so",
        f"session required {sshd_mod.PAMDIR}/pam_permit.so"])
    yield world
    world.stop()


@pytest.fixture
def pw(profile_world):
    profile_world.begin_test()
    yield profile_world
    profile_world.end_test()


@pytest.mark.parametrize("method,prompt", [
    ("keyboard-interactive", "(alice@127.0.0.1) Password: "),
    ("password", "alice@127.0.0.1's password: ")])
def test_profile_stack_password_prompt_with_opt_in(pw, method, prompt):
    """The profile's stack over ssh: the askpass answers pam_unix's "Password: " (or ssh's
    password prompt) with the whole token, pam_unix fails, pam_k8stoken takes the same answer
    (use_first_pass): logged in."""
    tok = pw.h.token()
    assert len(tok) <= 1023
    before = pw.reviews()
    r = pw.ssh("alice", tok, command=SESSION, method=method, extra_env=OPT_IN)
    assert_login(r)
    assert pw.reviews() - before == 1
    one_allow(pw)
    assert f"Accepted {method}" in pw.logs()[0]


@pytest.mark.parametrize("method", ["keyboard-interactive", "password"])
def test_profile_stack_token_too_long(pw, method):
    tok = pw.pod_token()
    assert len(tok) > 1023
    before = pw.reviews()
    r = pw.ssh("alice", tok, command=SESSION, method=method, extra_env=OPT_IN)
    assert_denied(r)
    assert too_long(len(tok)) in r.stderr, r.stderr
    assert pw.reviews() - before == 0
    # keyboard-interactive: ssh sends an empty answer, pam_unix fails, the module refuses it;
    # password: ssh sends nothing, PAM never runs
    assert outcomes(pw) == ([("deny", "empty_token")] if method == "keyboard-interactive"
                            else []), pw.decisions()


@pytest.mark.parametrize("method", ["keyboard-interactive", "password"])
def test_profile_stack_without_opt_in(pw, method):
    tok = pw.h.token()
    before = pw.reviews()
    r = pw.ssh("alice", tok, command=SESSION, method=method)
    assert_denied(r)
    assert NOT_ANSWERED_HINT in r.stderr, r.stderr
    assert pw.reviews() - before == 0
    assert outcomes(pw) == ([("deny", "empty_token")] if method == "keyboard-interactive"
                            else []), pw.decisions()
