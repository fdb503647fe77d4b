"""Findings of the security review (issue 10, and issue 17's helper exit status): no lock
held by a stalled process delays a login past its deadline; no piece of the token stays in
the host process; RLIMIT_FSIZE never kills the host; a non-token answer cannot skip the
module under `auth required`; huge exp, a failing K8S_* export and a failing helper each
end in the right decision. See docs/security.md."""
import json
import os
import subprocess
import sys
import time

import pytest

from harness import AUDIENCE, DRIVER, SERVICE, TIMED, Result

TR = "/apis/authentication.k8s.io/v1/tokenreviews"
PERMIT = os.path.join("/usr/lib", subprocess.run(
    ["gcc", "-print-multiarch"], capture_output=True, text=True, check=True).stdout.strip(),
    "security", "pam_permit.so")
TIMEOUT = 3          # the harness's `timeout`
SA = "system:serviceaccount:pam:pam-user"


def decision_of(r, code, reason):
    assert r.code == code, r
    d = r.decision()
    assert d is not None and d["reason"] == reason, r
    return d


def drive(h, user, answer, args=(), prefix=(), log_to_stderr=False, extra_env=None,
          timeout=60):
    """One driver run with extra driver arguments (harness.run takes none). With
    log_to_stderr the module's log goes to the driver's stderr (a pipe), not to a file."""
    env = h.driver_env(extra_env)
    log_path = env["KT_TEST_SYSLOG"]
    if log_to_stderr:
        env["KT_TEST_SYSLOG"] = "/dev/stderr"
    elif os.path.exists(log_path):
        os.unlink(log_path)
    answers = os.path.join(h.tmp, "answers")
    h._write_private(answers, answer + "\0")
    cmd = list(prefix) + [DRIVER, "--confdir", h.confdir, "--service", SERVICE, "--user", user,
                          "--answers", answers] + list(args)
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace",
                          timeout=timeout)
    elapsed = time.monotonic() - start
    log = proc.stderr if log_to_stderr else (
        open(log_path, errors="replace").read() if os.path.exists(log_path) else "")
    h.captured += [proc.stdout, proc.stderr, log]
    return Result(proc, log, elapsed)


# ------------------------------------------------------- 1. no stalled lock delays a login

HOLDER = r"""
import fcntl, os, sys, time
d = sys.argv[1]
held = [os.open(d, os.O_RDONLY)]
for name in sorted(os.listdir(d)):
    held.append(os.open(os.path.join(d, name), os.O_RDONLY))
for fd in held:
    fcntl.flock(fd, fcntl.LOCK_EX)
print(len(held), flush=True)
time.sleep(3600)
"""


@pytest.fixture
def holder(h):
    """Holds an exclusive flock on the cache directory and on every file in it, as a
    process stopped inside the module would, until the test ends."""
    procs = []

    def start():
        p = subprocess.Popen([sys.executable, "-c", HOLDER, h.cache_dir], stdout=subprocess.PIPE,
                             text=True)
        procs.append(p)
        count = int(p.stdout.readline())
        return count
    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_a_stalled_holder_of_every_cache_lock_delays_no_login(h, holder):
    h.write_conf(cache_ttl=60)
    cached, uncached, forged = h.token(), h.token(name="other-user"), \
        h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], key="other")
    h.write_conf(cache_ttl=60, rules=["map serviceaccount:pam/* alice"])
    # every file the cache uses for these three tokens comes into being, only `cached` is stored
    decision_of(h.run("alice", cached), "PAM_SUCCESS", "ok")
    h.api.add_fault(path=TR, status=503, times=1)
    decision_of(h.run("alice", uncached), "PAM_AUTHINFO_UNAVAIL", "http_status")
    h.end_backoff()   # the 503 opened the circuit breaker (docs/design.md §6.4)
    decision_of(h.run("alice", forged), "PAM_AUTH_ERR", "unauthenticated")
    files = sorted(os.listdir(h.cache_dir))
    assert "stats" in files and any(f.startswith("lock-") for f in files), files
    assert holder() == len(files) + 1
    for token, code, reason, cache in [(cached, "PAM_SUCCESS", "ok", "hit"),
                                       (uncached, "PAM_SUCCESS", "ok", "miss"),
                                       (forged, "PAM_AUTH_ERR", "unauthenticated", "miss")]:
        r = h.run("alice", token, timeout=TIMEOUT + 15)
        assert decision_of(r, code, reason)["cache"] == cache, r
        assert not TIMED or r.elapsed <= TIMEOUT + 1, r.elapsed


# ----------------------------------------------- 2. no piece of the token in the host process

@pytest.mark.plain_build_only
@pytest.mark.parametrize("cache_ttl", [0, 60])
def test_no_piece_of_the_token_stays_in_the_process(h, cache_ttl):
    """The API server echoes spec.token; after pam_end no 16-character piece of the token
    may be left anywhere in the driver's writable memory: after a review (miss) and after
    a cache hit."""
    h.write_conf(cache_ttl=cache_ttl)
    token = h.token()
    token_file = os.path.join(h.tmp, "scan-token")
    h._write_private(token_file, token)
    # the test server echoes the token, as kube-apiserver does
    status, reply = h.api.token_review(token, [AUDIENCE])
    assert reply["spec"]["token"] == token and reply["status"]["authenticated"] is True
    runs = ["miss", "hit"] if cache_ttl else ["off"]
    for expected in runs:
        r = drive(h, "alice", token, ["--scan-token", token_file])
        d = decision_of(r, "PAM_SUCCESS", "ok")
        assert d.get("cache", "off") == expected, r
        assert "scan 0" in r.stdout.splitlines(), r.stdout


def test_the_memory_scan_finds_a_token_that_is_there(h):
    """Control: the same scan finds the token when the process does hold it (here in its
    environment)."""
    token = h.token()
    token_file = os.path.join(h.tmp, "scan-token")
    h._write_private(token_file, token)
    r = drive(h, "alice", "not-a-token", ["--scan-token", token_file],
              extra_env={"KT_SCAN_CONTROL": token})
    found = [l for l in r.stdout.splitlines() if l.startswith("scan ")]
    assert len(found) == 1 and int(found[0].split()[1]) > 0, r.stdout


def test_helper_forwards_no_echoed_spec(h):
    token = h.token()
    proc = subprocess.run([os.path.join(os.path.dirname(DRIVER), "..", "k8stoken-review"),
                           "--conf", h.conf], input=token.encode(), capture_output=True,
                          env={"PATH": "/usr/bin:/bin"})
    out = proc.stdout.decode(errors="replace")
    h.captured.append(out)
    assert proc.returncode == 0 and "\nreason ok\n" in out, out
    body = out.split("\n", 6)[6].rsplit("end\n", 1)[0]
    reply = json.loads(body)
    assert set(reply) == {"apiVersion", "kind", "status"}, reply
    assert reply["status"]["user"]["username"] == SA
    assert token[:16] not in out


# ------------------------------------------------------------------- 3. RLIMIT_FSIZE

@pytest.mark.parametrize("fresh", [True, False])
@pytest.mark.parametrize("limit", [0, 1])
def test_file_size_limit_skips_the_cache_write(h, limit, fresh):
    # the plain helper: a checked one's valgrind could not write its own log under the limit
    h.helper = h.helper_bin
    h.write_service()
    h.write_conf(cache_ttl=60)
    if not fresh:   # key and stats exist already (no entry): the entry write hits the limit
        forged = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], key="other")
        decision_of(h.run("alice", forged), "PAM_AUTH_ERR", "unauthenticated")
    r = drive(h, "alice", h.token(), prefix=["prlimit", f"--fsize={limit}", "--"],
              log_to_stderr=True)
    assert r.exit == 0, r   # not killed by SIGXFSZ
    decision_of(r, "PAM_SUCCESS", "ok")
    left = os.listdir(h.cache_dir) if os.path.isdir(h.cache_dir) else []
    assert not [f for f in left if f.startswith("t-")], left
    assert not [f for f in left if f.startswith("e-")], left
    warned = [l for l in r.log_lines() if l.startswith(("cache unavailable:", "cache: result not stored:"))]
    expected = ("cache unavailable: cannot read or create the key" if fresh
                else "cache: result not stored: the file size limit (RLIMIT_FSIZE) is too low")
    assert warned and warned[0].startswith(expected), r.log


# --------------------------------------------- 4. a non-token answer under auth required

@pytest.mark.parametrize("args,code,reason", [("", "PAM_AUTH_ERR", "not_jwt"),
                                              ("ignore_non_token", "PAM_SUCCESS", "not_jwt")])
def test_non_token_answer_under_required(h, args, code, reason):
    """token AND second factor (pam_permit stands in for it): the answer `x` must not skip
    the module unless the stack asks for that with ignore_non_token."""
    h.write_service(stack=[f"auth required {h.module_line()} {args}".rstrip(),
                           f"auth required {PERMIT}"])
    h.api.reset_requests()
    r = h.run("alice", "x")
    decision_of(r, code, reason)
    assert h.api.requests()["counts"].get(TR, 0) == 0


def test_ignore_non_token_still_refuses_a_refused_token(h):
    h.write_service(args="ignore_non_token")
    decision_of(h.run("alice", h.token(name="other-user")), "PAM_AUTH_ERR", "not_mapped")
    decision_of(h.run("alice", h.token()), "PAM_SUCCESS", "ok")


# ------------------------------------------------------------------------ 5. smaller ones

def test_exp_near_int64_max_is_cached_without_overflow(h):
    """(exp - now) * 1000 overflowed: UBSan aborted the host; otherwise the ttl wrapped
    negative and the result was never stored."""
    h.write_conf(cache_ttl=60)
    token = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE],
                   claims_override={"exp": 2 ** 62})
    assert decision_of(h.run("alice", token), "PAM_SUCCESS", "ok")["cache"] == "miss"
    assert decision_of(h.run("alice", token), "PAM_SUCCESS", "ok")["cache"] == "hit"


def test_failing_identity_export_is_logged_as_a_denial(h):
    """More than 3 KiB of groups cannot be exported as K8S_GROUPS: the one decision line
    says deny with the reason, and no K8S_* variable is left."""
    groups = ["system:serviceaccounts", "system:serviceaccounts:pam", "system:authenticated"] + \
        [f"team-{i:03d}-" + "g" * 40 for i in range(80)]
    body = json.dumps({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                       "metadata": {"creationTimestamp": None},
                       "spec": {"token": "x", "audiences": [AUDIENCE]},
                       "status": {"authenticated": True, "audiences": [AUDIENCE],
                                  "user": {"username": SA, "uid": "8f5660ff-e115-44f9-9aeb-e060246c6860",
                                           "groups": groups}}}) + "\n"
    h.api.add_fault(path=TR, status=201, body=body, times=1)
    r = h.run("alice", h.token())
    d = decision_of(r, "PAM_BUF_ERR", "nomem")
    assert d["verdict"] == "deny", r
    assert "K8S_GROUPS would be longer than" in d["detail"], d
    assert not [l for l in r.log_lines() if l.startswith("allow ")], r.log
    assert r.env == {}, r.env


HELPER_THEN_FAIL = """#!/bin/sh
cat > /dev/null
body='$BODY'
printf 'kt-review/1\\nreason ok\\nhttp 201\\nserver 0\\ndetail \\nbody %d\\n%send\\n' "${#body}" "$body"
exit $STATUS
"""


@pytest.mark.parametrize("status,code,reason", [(1, "PAM_AUTHINFO_UNAVAIL", "helper_failed"),
                                                (0, "PAM_SUCCESS", "ok")])
def test_helper_exit_status_counts(h, status, code, reason):
    """A helper that writes a whole, valid-looking record and then exits non-zero failed."""
    body = json.dumps({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                       "status": {"authenticated": True, "audiences": [AUDIENCE],
                                  "user": {"username": SA, "uid": "u-1",
                                           "groups": ["system:serviceaccounts:pam"]}}})
    path = os.path.join(h.tmp, "helper")
    with open(path, "w") as f:
        f.write(HELPER_THEN_FAIL.replace("$BODY", body).replace("$STATUS", str(status)))
    os.chmod(path, 0o755)
    h.write_service(args=f"helper={path}")
    decision_of(h.run("alice", h.token()), code, reason)
