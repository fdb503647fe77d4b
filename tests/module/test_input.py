"""docs/security.md D01-D10, D13, E01, E06, L02-L04: what the module does with what PAM
hands it, with its own arguments, and with a hostile environment."""
import base64
import json
import os
import re
import subprocess

import pytest

from harness import AUDIENCE, OWNER
from listeners import CountingListener

TR = "/apis/authentication.k8s.io/v1/tokenreviews"
IGNORED = "PAM_AUTH_ERR"   # a non-token answer: refused unless ignore_non_token is given
JUNK = "\b\n\r\177INCORRECT"  # what sshd passes for invalid users and refused root


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def shaped_jwt(sig_len=342, header=None, payload=None):
    header = header or {"alg": "RS256", "kid": "k" * 43}
    payload = payload or {"aud": [AUDIENCE], "exp": 4102444800, "iss": "x", "sub": "y"}
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()),
                     "A" * sig_len])


def reviews(h):
    return h.api.requests()["counts"].get(TR, 0)


def assert_local_only(h, r, code, reason):
    assert_outcome(r, code, reason)
    assert reviews(h) == 0


def assert_outcome(r, code, reason):
    assert r.code == code, r
    d = r.decision()
    assert d is not None, r
    assert d["reason"] == reason, r
    assert d["verdict"] == ("allow" if code == "PAM_SUCCESS" else "deny"), r


def test_d01_empty_and_null_answers(h):
    h.api.reset_requests()
    assert_local_only(h, h.run("alice", ""), "PAM_AUTH_ERR", "empty_token")
    assert_local_only(h, h.run("alice", []), "PAM_AUTH_ERR", "empty_token")


@pytest.mark.parametrize("size", [8 * 1024 + 1, 64 * 1024, 1024 * 1024])
def test_d02_oversized_tokens_refused_before_network(h, size):
    h.write_conf(extra="max_token_size = 8192")
    h.api.reset_requests()
    r = h.run("alice", "a" * size)
    assert_local_only(h, r, "PAM_AUTH_ERR", "token_too_long")


def pad_to_length(h, length):
    """A real, valid token of exactly `length` characters, or the nearest longer one."""
    base = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE])
    for extra in range(0, 8):
        need = length - len(base) + extra
        filler = max(0, need * 3 // 4 - 8)
        tok = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE],
                     claims_override={"zz": "p" * filler})
        if len(tok) >= length:
            return tok
    return tok


@pytest.mark.parametrize("length", [1023, 1024, 1025, 4095, 4096])
def test_d03_length_boundaries_accepted(h, length):
    tok = pad_to_length(h, length)
    assert length <= len(tok) <= length + 4
    assert_outcome(h.run("alice", tok), "PAM_SUCCESS", "ok")


# NUL is not among them: a PAM answer is a C string and ends there (the unit tests
# cover NUL inside a token).
@pytest.mark.parametrize("bad", ["\n", "\r", "\t", " ", '"', "\\", "%", "{", "\u00e9", "\xff"])
def test_d04_forbidden_characters_refused_locally(h, bad):
    tok = h.token()
    tok = tok[:100] + bad + tok[100:]
    h.api.reset_requests()
    r = h.run("alice", tok)
    assert_local_only(h, r, IGNORED, "not_jwt")
    assert "fp" not in r.decision()


def test_d05_json_injection_never_rewrites_the_request(h):
    injection = 'a.b.c","audiences":["https://kubernetes.default.svc'
    h.api.reset_requests()
    r = h.run("alice", injection)
    assert_local_only(h, r, IGNORED, "not_jwt")
    # The helper itself (which does no shape check) must send it as one literal string.
    proc = subprocess.run([h.helper, "--conf", h.conf], input=injection.encode(),
                          capture_output=True, env={"PATH": "/usr/bin:/bin"})
    h.captured.append(proc.stdout.decode(errors="replace"))
    assert b"reason ok" in proc.stdout
    sent = [q for q in h.api.requests()["last"] if q["path"] == TR][-1]["body"]
    body = json.loads(sent)
    assert body["spec"] == {"token": injection, "audiences": [AUDIENCE]}


def test_no_fingerprint_of_a_password(h):
    r = h.run("alice", "hunter2")
    assert "fp" not in r.decision()


@pytest.mark.parametrize("user", ["root", "sysuser", "nosuchuser"])
def test_password_is_left_to_the_next_module_for_every_account(h, user):
    h.write_service(stack=[f"auth [success=done ignore=ignore default=die] {h.module_line()} ignore_non_token",
                           "auth required pam_permit.so"])
    h.api.reset_requests()
    r = h.run(user, "correct horse battery staple")
    assert r.code == "PAM_SUCCESS"   # pam_permit stands in for pam_unix here
    assert r.decision()["reason"] == "not_jwt"
    assert reviews(h) == 0


@pytest.mark.parametrize("text", [
    "password", "a", "a.b", "a.b.c.d", "a..c", ".b.c", "a.b.", "!!!.b.c",
    shaped_jwt(header={"alg": "none"}), shaped_jwt(header={"alg": "HS256"}),
    "eyJub3QganNvbg.eyJ4IjoxfQ." + "A" * 342,
    shaped_jwt(sig_len=87, header={"alg": "ES256", "kid": "k" * 43}),
])
def test_d06_not_a_jwt_is_ignored_without_network(h, text):
    h.api.reset_requests()
    assert_local_only(h, h.run("alice", text), IGNORED, "not_jwt")


def test_d06_unfinished_signature_is_an_incomplete_token(h):
    """341 characters: not yet a 2048-bit RS256 signature, and no part 2 came."""
    h.api.reset_requests()
    r = h.run("alice", shaped_jwt(sig_len=341))
    assert_local_only(h, r, "PAM_AUTH_ERR", "incomplete_token")


def test_d06_well_shaped_forgery_is_reviewed_and_denied(h):
    h.api.reset_requests()
    r = h.run("alice", shaped_jwt())
    assert r.code == "PAM_AUTH_ERR"
    assert r.decision()["reason"] == "unauthenticated"
    assert reviews(h) == 1


@pytest.mark.parametrize("length", [1, 2, 13, 14, 100, 512, 1024, 2000])
@pytest.mark.parametrize("user", ["alice", "nosuchuser", "root"])
def test_d07_sshd_junk_password(h, length, user):
    junk = (JUNK * (length // len(JUNK) + 1))[:length]
    h.api.reset_requests()
    r = h.run(user, junk)
    assert_local_only(h, r, IGNORED, "not_jwt")


@pytest.mark.parametrize("user", ["nosuchuser", "../etc/passwd", "a/b", "..", "alice:x",
                                  "alice\nroot", "a" * 300, "\u00e4lice", "ALICE"])
def test_d08_bad_or_unknown_user(h, user):
    h.api.reset_requests()
    r = h.run(user, h.token())
    assert_local_only(h, r, "PAM_USER_UNKNOWN", "unknown_user")
    line = [l for l in r.log_lines() if l.startswith("deny")][0]
    assert "user=(unknown)" in line
    if len(user) > 2:
        assert user not in r.log


def test_d09_token_for_another_user(h):
    r = h.run("bob", h.token())
    assert_outcome(r, "PAM_AUTH_ERR", "not_mapped")
    assert r.user == "bob"


@pytest.mark.parametrize("order", ["deny-last", "deny-first"])
def test_d09_deny_rule_wins_over_a_matching_map_rule(h, order):
    """`map serviceaccount:*/* {name}` maps kube-system/alice to alice; the deny rule for
    kube-system/* refuses it anyway, in either order (the control run shows the map
    rule alone allows it)."""
    rules = ["map serviceaccount:*/* {name}", "deny serviceaccount:kube-system/*"]
    if order == "deny-first":
        rules.reverse()
    token = h.token(ns="kube-system", name="alice")
    h.write_conf(rules=[rules[0] if "map" in rules[0] else rules[1]])
    r = h.run("alice", token)
    assert_outcome(r, "PAM_SUCCESS", "ok")          # the map rule matches
    h.write_conf(rules=rules)
    r = h.run("alice", token)
    assert_outcome(r, "PAM_AUTH_ERR", "deny_rule")
    assert r.decision()["sa"] == "kube-system/alice"
    other = h.token(ns="team-x", name="alice")      # other namespaces still map
    assert_outcome(h.run("alice", other), "PAM_SUCCESS", "ok")


def test_d09_group_rule_matching_the_last_group(h):
    """Real tokens' groups are [system:serviceaccounts, system:serviceaccounts:NS,
    system:authenticated]: a rule on the last one must be seen."""
    h.write_conf(rules=["map group:system:authenticated robot"])
    r = h.run("robot", h.token())
    assert_outcome(r, "PAM_SUCCESS", "ok")
    assert r.env["K8S_GROUPS"].split(",")[-1] == "system:authenticated"
    h.write_conf(rules=["map group:system:serviceaccounts:pam robot"])   # the middle one
    assert_outcome(h.run("robot", h.token()), "PAM_SUCCESS", "ok")
    h.write_conf(rules=["map group:system:authenticate robot"])          # a prefix: no
    assert_outcome(h.run("robot", h.token()), "PAM_AUTH_ERR", "not_mapped")


@pytest.mark.parametrize("user", ["root", "sysuser"])
def test_d10_system_accounts_refused(h, user):
    h.write_conf(rules=[f"map serviceaccount:pam/pam-user {user}"])
    h.api.reset_requests()
    r = h.run(user, h.token())
    assert_local_only(h, r, "PAM_AUTH_ERR", "uid_policy")


def test_d10_root_only_with_allow_root(h):
    h.write_conf(rules=["map serviceaccount:pam/pam-user root"], extra="allow_root = yes")
    assert_outcome(h.run("root", h.token()), "PAM_SUCCESS", "ok")


@pytest.mark.parametrize("min_uid,outcome", [
    (500, ("PAM_SUCCESS", "ok")), (501, ("PAM_AUTH_ERR", "uid_policy")),
])
def test_d10_min_uid_is_exact(h, min_uid, outcome):
    """sysuser has uid 500: min_uid 500 admits it, 501 does not."""
    h.write_conf(rules=["map serviceaccount:pam/pam-user sysuser"], extra=f"min_uid = {min_uid}")
    h.api.reset_requests()
    assert_outcome(h.run("sysuser", h.token()), *outcome)
    assert reviews(h) == (1 if outcome[0] == "PAM_SUCCESS" else 0)


@pytest.mark.parametrize("args", ["bogus", "conf", "debug=1", "use_first_pass try_first_pass",
                                  "conf=relative.conf"])
def test_d13_bad_module_arguments(h, args):
    h.write_service(args=args)
    r = h.run("alice", h.token())
    assert_config_refused(r)


def assert_config_refused(r, message=None):
    """PAM_SERVICE_ERR, one "configuration refused: ..." line at priority err, no decision."""
    assert r.code == "PAM_SERVICE_ERR", r
    assert r.decision() is None, r
    refused = re.findall(r"^syslog (\d) pam_k8stoken\S* configuration refused: (.*)$", r.log, re.M)
    assert len(refused) == 1 and refused[0][0] == "3", r
    if message is not None:
        assert refused[0][1] == message, r


def test_d13_debug_changes_no_outcome(h):
    h.write_service(args="debug")
    assert_outcome(h.run("alice", h.token()), "PAM_SUCCESS", "ok")
    assert_outcome(h.run("bob", h.token()), "PAM_AUTH_ERR", "not_mapped")
    assert_outcome(h.run("alice", shaped_jwt()), "PAM_AUTH_ERR", "unauthenticated")


@pytest.mark.parametrize("mode,owner", [(0o666, OWNER), (0o664, OWNER),
                                        pytest.param(0o644, 65534, marks=pytest.mark.needs_root)])
def test_config_file_must_be_safe(h, mode, owner):
    os.chmod(h.conf, mode)
    os.chown(h.conf, owner, 0 if OWNER == 0 else -1)
    r = h.run("alice", h.token())
    why = (f"is owned by uid {owner}, expected {OWNER}" if owner != OWNER
           else "is writable by group or others")
    assert_config_refused(r, f"{h.conf} {why}")


def test_missing_config_file(h):
    os.unlink(h.conf)
    assert_config_refused(h.run("alice", h.token()), f"{h.conf} does not exist")


def test_e01_hostile_environment_changes_nothing(h):
    proxy = CountingListener()
    keylog = os.path.join(h.tmp, "keylog")
    evil_conf = os.path.join(h.tmp, "openssl.cnf")
    with open(evil_conf, "w") as f:
        f.write("this is not an openssl config [\n")
    hostile = {
        "https_proxy": f"http://127.0.0.1:{proxy.port}", "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}",
        "ALL_PROXY": f"socks5h://127.0.0.1:{proxy.port}", "NO_PROXY": "", "no_proxy": "",
        "SSLKEYLOGFILE": keylog, "OPENSSL_CONF": evil_conf, "SSL_CERT_FILE": "/dev/null",
        "SSL_CERT_DIR": "/nonexistent", "CURL_CA_BUNDLE": "/dev/null", "TZ": "Pacific/Kiritimati",
        "LANG": "tr_TR.UTF-8", "HOME": "/nonexistent", "XDG_CONFIG_HOME": h.tmp,
        "LOCALDOMAIN": "evil.example", "RES_OPTIONS": "ndots:15 attempts:5",
        "HOSTALIASES": os.path.join(h.tmp, "aliases"),
    }
    try:
        tok = h.token()

        def outcomes(env):
            runs = [h.run("alice", tok, extra_env=env), h.run("bob", tok, extra_env=env)]
            return [(r.code, r.decision()["reason"]) for r in runs]
        assert outcomes(None) == outcomes(hostile) == [("PAM_SUCCESS", "ok"),
                                                      ("PAM_AUTH_ERR", "not_mapped")]
        assert not os.path.exists(keylog)
        assert proxy.connections == 0
    finally:
        proxy.close()


@pytest.mark.parametrize("sigchld", ["reap", "ignore"])
def test_e06_host_sigchld_handling(h, sigchld):
    tok = h.token()
    assert_outcome(h.run("alice", tok, sigchld=sigchld), "PAM_SUCCESS", "ok")
    assert_outcome(h.run("bob", tok, sigchld=sigchld), "PAM_AUTH_ERR", "not_mapped")


def test_l02_success_line_fields(h):
    r = h.run("alice", h.token(), rhost="192.0.2.7")
    d = r.decision()
    assert d["verdict"] == "allow"
    assert d["user"] == "alice"
    assert d["sa"] == "pam/pam-user"
    assert d["uid"] and d["credential"].startswith("JTI=")
    assert d["cache"] == "off" and d["server"] == h.api.url  # the harness leaves the cache off
    assert re.fullmatch(r"\d+", d["ms"]) and re.fullmatch(r"[0-9a-f]{12}", d["fp"])
    assert d["reason"] == "ok" and d["rhost"] == "192.0.2.7"
    assert re.search(r"^syslog 6 pam_k8stoken\S* allow ", r.log, re.M)


def test_l02_pod_bound_token_names_the_pod(h):
    h.ensure_sa("pam", "pam-user")
    pod = "web-" + os.path.basename(h.tmp).lower().replace("_", "-")
    h.api.create_pod("pam", pod, "pam-user", node="node-a")
    tok = h.token(bound={"kind": "Pod", "apiVersion": "v1", "name": pod})
    r = h.run("alice", tok)
    assert r.code == "PAM_SUCCESS"
    assert r.decision()["pod"] == pod
    assert r.env["K8S_POD_NAME"] == pod


def test_l03_server_error_text_is_escaped_and_capped(h):
    nasty = "bad\ntoken\r\x1b[31mred %n%s " + "x" * 100000
    body = json.dumps({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                       "metadata": {}, "spec": {}, "status": {"user": {}, "error": nasty[:60000]}})
    h.api.add_fault(path=TR, status=201, body=body, content_type="application/json")
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTH_ERR"
    lines = [l for l in r.log_lines() if l.startswith("deny")]
    assert len(lines) == 1
    detail = r.decision()["detail"]
    assert len(detail) <= 2 + 4 * 200 + 3
    assert not any(ord(c) < 0x20 or ord(c) == 0x7f for c in lines[0])
    assert "\\x0a" in detail and "%n%s" in detail


def test_l04_client_sees_only_the_prompt(h):
    cases = [("alice", h.token(), "PAM_AUTHINFO_UNAVAIL", "http_status"),
             ("bob", h.token(), "PAM_AUTH_ERR", "not_mapped"),
             ("nosuchuser", h.token(), "PAM_USER_UNKNOWN", "unknown_user"),
             ("alice", "password", IGNORED, "not_jwt")]
    h.api.add_fault(path=TR, status=503, times=1)
    for user, tok, code, reason in cases:
        r = h.run(user, tok)
        assert_outcome(r, code, reason)
        assert r.prompts == ["off Kubernetes token: "], r.prompts



def test_acct_mgmt_only_vouches_for_its_own_success(h):
    assert h.run("alice", h.token(), acct=True).acct == "PAM_SUCCESS"
    r = h.run("bob", h.token(), acct=True)
    assert_outcome(r, "PAM_AUTH_ERR", "not_mapped")
    # the module ignores it; a stack with nothing else then denies (test_promises.py tells
    # PAM_IGNORE from PAM_PERM_DENIED apart)
    assert r.acct == "PAM_PERM_DENIED"

