"""A login interrupted by SIGINT, SIGTERM, SIGALRM or SIGCHLD at random moments in the host
process (tests/tools/pam_signals.c). When the host catches them (no SA_RESTART: the module's
system calls see EINTR; SIGALRM also from an interval timer; SIGCHLD also with a handler
that reaps every child), a refused token is still refused with reason unauthenticated and a
good one still allowed; when they kill the host, nothing says success. Either way no helper
process is left behind, no lock stripe stays held, and (when the host lives) no temporary
cache file is left. The random moments come from a seed printed with each failure."""
import fcntl
import glob
import os
import random
import re
import signal
import subprocess
import time

import pytest

from harness import BUILD, DEADLINE_MS, SERVICE

TR = "/apis/authentication.k8s.io/v1/tokenreviews"
# Every review takes this long, so that the signals (sent 0-40 ms apart, 1-3 of them) arrive
# while a login is under way, however fast the machine: otherwise a login may finish first
# and the test tests nothing.
REVIEW_LATENCY_MS = 300

SIGNALS_BIN = os.path.join(BUILD, "tests", "pam_signals")
SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM, "ALRM": signal.SIGALRM,
           "CHLD": signal.SIGCHLD}
SEED = int(os.environ.get("KT_SIGNAL_SEED", time.time_ns() % 100000))


def helpers_of(conf):
    """PIDs of helper processes started for this test's configuration."""
    found = []
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            argv = open(path, "rb").read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"k8stoken-review") and conf.encode() in argv:
            found.append(int(path.split("/")[2]))
    return found


def assert_nothing_left(h, host_lived):
    deadline = time.monotonic() + DEADLINE_MS / 1000 + 3
    while helpers_of(h.conf) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert helpers_of(h.conf) == [], "a helper process was left behind"
    for lock in glob.glob(os.path.join(h.cache_dir, "lock-*")):
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)   # raises when still held
        finally:
            os.close(fd)
    if host_lived:
        assert glob.glob(os.path.join(h.cache_dir, "t-*")) == [], "a temporary file was left"


def interrupted_login(h, rng, token_file, sig, handlers, reap=False, alarm_us=0):
    cmd = [SIGNALS_BIN, "--confdir", h.confdir, "--service", SERVICE, "--user", "alice",
           "--token", token_file]
    if handlers:
        cmd.append("--handlers")
    if reap:
        cmd.append("--reap")
    if alarm_us:
        cmd += ["--alarm-us", str(alarm_us)]
    env = h.driver_env()
    if os.path.exists(env["KT_TEST_SYSLOG"]):
        os.unlink(env["KT_TEST_SYSLOG"])
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    proc.stdout.readline()   # "started PID": the handlers are in place
    for _ in range(rng.randint(1, 3)):
        time.sleep(rng.uniform(0, 0.04))
        if proc.poll() is None:
            proc.send_signal(SIGNALS[sig])
    out, err = proc.communicate(timeout=60)
    log = open(env["KT_TEST_SYSLOG"]).read() if os.path.exists(env["KT_TEST_SYSLOG"]) else ""
    h.captured += [out, err, log]
    return proc.returncode, out, log


def reason_of(log):
    m = re.search(r"\breason=(\w+)", log)
    return m.group(1) if m else None


@pytest.mark.parametrize("sig", sorted(SIGNALS))
def test_caught_signals_change_no_decision(h, sig):
    rng = random.Random(f"{SEED}-{sig}")
    h.write_conf(cache_ttl=30)
    h.api.add_fault(path=TR, latency_ms=REVIEW_LATENCY_MS)
    good = h.token()
    bad = good[:-8] + ("AAAAAAAA" if not good.endswith("AAAAAAAA") else "BBBBBBBB")
    h.secrets.append(bad)
    files = {}
    for name, tok in (("good", good), ("bad", bad)):
        files[name] = os.path.join(h.tmp, f"token-{name}")
        h._write_private(files[name], tok)
    caught = 0
    for attempt in range(4):
        what = f"seed {SEED} {sig} attempt {attempt}"
        options = {"reap": sig == "CHLD" and attempt % 2 == 1,
                   "alarm_us": 700 if sig == "ALRM" and attempt % 2 == 0 else 0}
        rc, out, log = interrupted_login(h, rng, files["bad"], sig, True, **options)
        assert rc == 0 and "authenticate 7\n" in out, (what, rc, out, log)
        assert reason_of(log) == "unauthenticated", (what, log)
        caught += int(out.split("signals ")[1]) if "signals " in out else 0
        assert_nothing_left(h, host_lived=True)
        # a good token, reviewed and stored (the cache is emptied first)
        for entry in glob.glob(os.path.join(h.cache_dir, "e-*")):
            os.unlink(entry)
        rc, out, log = interrupted_login(h, rng, files["good"], sig, True, **options)
        assert rc == 0 and "authenticate 0\n" in out, (what, rc, out, log)
        assert reason_of(log) == "ok", (what, log)
        assert_nothing_left(h, host_lived=True)
        caught += int(out.split("signals ")[1]) if "signals " in out else 0
    assert caught > 0, "no signal arrived during a login: the test tested nothing"


@pytest.mark.parametrize("sig", ["INT", "TERM", "ALRM"])
def test_fatal_signals_never_succeed_and_leave_nothing(h, sig):
    rng = random.Random(f"{SEED}-fatal-{sig}")
    h.write_conf(cache_ttl=30)
    h.api.add_fault(path=TR, latency_ms=REVIEW_LATENCY_MS)
    good = h.token()
    bad = good[:-8] + ("AAAAAAAA" if not good.endswith("AAAAAAAA") else "BBBBBBBB")
    h.secrets.append(bad)
    path = os.path.join(h.tmp, "token-bad")
    h._write_private(path, bad)
    killed = 0
    for attempt in range(6):
        rc, out, log = interrupted_login(h, rng, path, sig, False)
        what = f"seed {SEED} {sig} attempt {attempt}"
        assert "authenticate 0\n" not in out and "allow " not in log, (what, out, log)
        # killed by the signal, or finished first with the refusal
        assert rc == -SIGNALS[sig] or ("authenticate 7\n" in out and rc == 0), (what, rc, out)
        assert_nothing_left(h, host_lived=False)
        killed += rc == -SIGNALS[sig]
    assert killed > 0, "the signal never arrived during a login: the test tested nothing"
