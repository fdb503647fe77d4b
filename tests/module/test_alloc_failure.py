"""Allocation failure injection (tests/tools/preload/alloc_fail.c): for a whole login --
a cache miss, a cache hit, a denial, a refused configuration -- the n-th allocation inside
pam_authenticate and pam_acct_mgmt fails, for n = 1, 2, ... until none is left to fail.
Every run must end fail-closed: PAM_SUCCESS only where the same login succeeds without
injection, and then with the right identity; otherwise a non-success code that agrees with
the decision line's reason (docs/design.md §4.2: nomem is PAM_BUF_ERR). The driver must not
crash. In the ASan pass (KT_SANITIZER=1) LeakSanitizer checks every run for leaks: a leak
makes the driver exit non-zero, which fails the run. The test prints how many distinct
places in the module had an allocation fail under them (addr2line of the innermost module
frame). The driver runs without valgrind in every pass (valgrind would replace malloc)."""
import glob
import os
import re
import subprocess
import time

import pytest

from harness import BUILD, PAM_RESULTS, SANITIZER, SERVICE, VALGRIND, Result, sanitizer_preload

PRELOAD = os.path.join(BUILD, "tests", "alloc_fail.so")
SA = "pam/pam-user"
# reason -> the PAM result the module must give for it (docs/design.md §4.2)
DENY = ("not_jwt", "empty_token", "token_too_long", "incomplete_token", "unauthenticated",
        "audience_mismatch", "not_serviceaccount", "bad_identity", "legacy_token", "deny_rule",
        "not_mapped", "uid_policy")
UNAVAILABLE = ("transport", "timeout", "redirect_refused", "reviewer_rejected", "http_status",
               "reply_too_large", "malformed_reply", "reviewer_credential", "helper_failed")
RESULT_OF = {"ok": "PAM_SUCCESS", "unknown_user": "PAM_USER_UNKNOWN", "config": "PAM_SERVICE_ERR",
             "nomem": "PAM_BUF_ERR", "system": "PAM_SYSTEM_ERR",
             **{r: "PAM_AUTH_ERR" for r in DENY}, **{r: "PAM_AUTHINFO_UNAVAIL" for r in UNAVAILABLE}}
# What a failed allocation may turn a login into when libpam or the conversation, not the
# module's decision, gives up (no decision line).
NO_DECISION_CODES = {"PAM_BUF_ERR", "PAM_SYSTEM_ERR", "PAM_SERVICE_ERR", "PAM_USER_UNKNOWN",
                     "PAM_CONV_ERR", "PAM_AUTH_ERR", "PAM_ABORT", "PAM_AUTHINFO_UNAVAIL",
                     "PAM_PERM_DENIED"}
PAM_RESULTS.setdefault(26, "PAM_ABORT")

def injected_env(h, report, fail_at):
    env = h.driver_env()
    preload = [PRELOAD, "libnss_wrapper.so"]
    if SANITIZER:
        # ours first, then ASan's allocator behind it
        preload = [PRELOAD, sanitizer_preload(), "libnss_wrapper.so"]
        env["ASAN_OPTIONS"] += ":verify_asan_link_order=0"
    return {"LD_PRELOAD": " ".join(preload), "KT_ALLOC_FAIL_AT": str(fail_at),
            "KT_ALLOC_WARMUP": "1",
            "KT_ALLOC_FAIL_REPORT": report, **({"ASAN_OPTIONS": env["ASAN_OPTIONS"]}
                                               if SANITIZER else {})}


def read_report(path):
    """(module site, calling object) of the failed allocation or (None, None), and the count."""
    failed, count = (None, None), None
    if os.path.exists(path):
        for line in open(path).read().splitlines():
            word, *rest = line.split()
            if word == "failed":
                failed = (rest[1], rest[2])
            elif word == "count":
                count = int(rest[0])
    return failed, count


def run_driver(h, user, warm_token, token, env_extra):
    """Two logins in one driver process: the first (warm_token, never counted) does the
    libraries' lazy initialisation, the second (token) is the one whose allocations fail.
    Returns the second one's Result; a crash is returned, not raised."""
    env = h.driver_env(env_extra)
    log_path = env["KT_TEST_SYSLOG"]
    if os.path.exists(log_path):
        os.unlink(log_path)
    answers = os.path.join(h.tmp, "answers-each")
    h._write_private(answers, warm_token + "\0" + token + "\0")
    cmd = [h.driver, "--confdir", h.confdir, "--service", SERVICE, "--user", user,
           "--answers-each", answers, "--repeat", "2", "--acct"]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace",
                              timeout=30)
    except subprocess.TimeoutExpired as e:
        report = env_extra["KT_ALLOC_FAIL_REPORT"]
        raise AssertionError(f"the login hangs: {open(report).read()!r}, stdout {e.stdout!r}")
    log_text = open(log_path, errors="replace").read() if os.path.exists(log_path) else ""
    h.captured += [proc.stdout, proc.stderr, log_text]
    # the second transaction only: what follows the preload's "armed" line
    assert "armed\n" in proc.stdout and "armed\n" in log_text, (proc.stdout, log_text)
    proc.stdout = proc.stdout.split("armed\n", 1)[1]
    return Result(proc, log_text.split("armed\n", 1)[1], time.monotonic() - start)


def outcome(r):
    d = r.decision()
    return r.code, (d or {}).get("reason")


# libpam's pam_syslog formats its prefix with vasprintf; when that fails it logs this instead
# of the module's line (the line is lost, nothing else changes).
LOST_LOG_LINE = "asprintf: Cannot allocate memory"
LIBPAM_FAILED = re.compile(r"^syslog \d+ PAM .* failed: Cannot allocate memory$", re.M)


def check_fail_closed(r, baseline, n, site):
    code, reason = outcome(r)
    where = f"allocation {n} failed at {site}: {r!r}"
    lost_line = r.decision() is None and LOST_LOG_LINE in r.log
    if code == "PAM_SUCCESS":
        assert baseline[0] == "PAM_SUCCESS", "success only where the login succeeds: " + where
        d = r.decision()
        if not lost_line:
            assert d["verdict"] == "allow" and d["reason"] == "ok" and d["sa"] == SA, where
            assert d["user"] == "alice", where
        assert r.env.get("K8S_SERVICEACCOUNT") == SA, where
        assert r.user == "alice", where
        return
    if LIBPAM_FAILED.search(r.log):
        # libpam itself failed after the module had decided ("_pam_list_grantors() failed",
        # "audit_log_acct_message() failed") and made the result an error: still no success
        assert code in NO_DECISION_CODES, where
        return
    if reason is not None:
        assert reason in RESULT_OF and RESULT_OF[reason] == code, where
        assert r.decision()["verdict"] == "deny", where
    else:
        assert code in NO_DECISION_CODES, where
    assert not any(k.startswith("K8S_") for k in r.env), where


# Libraries that crash when one of their own allocations fails, on Debian 12: json-c 0.16
# dereferences a failed strdup of an object key inside json_tokener_parse_ex (fixed upstream
# in 0.18); OpenSSL 3.0 goes on after its lazy initialisation failed and takes a NULL lock
# in EVP_MD_fetch. The host process dies: no success, but no answer either.
CRASHING_LIBRARIES = ("libjson-c.so", "libcrypto.so")


def crashed_in_library(r, caller):
    """The process died of SIGSEGV (ASan: a SEGV report) after an allocation made by one of
    CRASHING_LIBRARIES itself failed."""
    if not caller.startswith(CRASHING_LIBRARIES):
        return False
    return r.exit == -11 or "SEGV on unknown address" in r.stderr


def leaks_only_inside(stderr, library):
    """LeakSanitizer reported leaks, and every frame of every leaked block is ASan's
    allocator or `library` (json-c 0.16 loses its own buffers on some allocation failures;
    a block the module failed to free would show the module, or the driver, on its stack)."""
    if "LeakSanitizer: detected memory leaks" not in stderr:
        return False
    frames = re.findall(r"^\s+#\d+ 0x[0-9a-f]+ (.*)$", stderr, re.M)
    return bool(frames) and all(library in f or "asan_malloc_linux" in f or "__interceptor_" in f
                                or "alloc_fail.c" in f
                                for f in frames)


def walk(h, user, warm_token, token, reset, tag):
    """Runs the login once without injection, then with allocation 1, 2, ... failing;
    returns (baseline, allocations, {site: outcomes}, [crash sites in libraries])."""
    report = os.path.join(h.tmp, f"alloc-{tag}")
    reset()
    r = run_driver(h, user, warm_token, token, injected_env(h, report, 0))
    assert r.exit == 0, r
    baseline = outcome(r)
    _, allocations = read_report(report)
    assert allocations and allocations > 0, r
    sites, library_crashes, library_leaks = {}, [], []
    n = 0
    while True:
        n += 1
        if os.path.exists(report):
            os.unlink(report)
        reset()
        r = run_driver(h, user, warm_token, token, injected_env(h, report, n))
        (site, caller), count = read_report(report)
        if site is None:
            # past the last allocation: the login is the baseline again, exactly
            assert r.exit == 0 and outcome(r) == baseline, (n, r)
            assert count is not None and count < n, (n, count)
            break
        if r.exit != 0 and crashed_in_library(r, caller):
            library_crashes.append(f"{site} {caller}")
            continue
        if r.exit != 0 and caller.startswith("libjson-c.so") and \
                leaks_only_inside(r.stderr, "libjson-c.so") and r.code is not None:
            library_leaks.append(f"{site} {caller}")
            r.exit = 0   # json-c's own leak; the outcome is judged below
        assert r.exit == 0, f"{tag}: allocation {n} failed at {site} ({caller}): " \
                            f"the driver crashed or leaked: {r!r}"
        check_fail_closed(r, baseline, n, f"{site} ({caller})")
        sites.setdefault(site, set()).add(outcome(r))
        assert n < 20000, "the walk does not end"
    return baseline, n - 1, sites, library_crashes, library_leaks


def symbolize(sites):
    """module+0xOFF -> 'function file:line' of the module (distinct source places)."""
    offsets = [s.split("+")[1] for s in sites if s.startswith("module+")]
    if not offsets:
        return {}
    out = subprocess.run(["addr2line", "-f", "-e", os.path.join(BUILD, "pam_k8stoken.so"),
                          *offsets], capture_output=True, text=True, check=True).stdout.split("\n")
    return {f"module+{off}": f"{out[2 * i]} {os.path.basename(out[2 * i + 1])}"
            for i, off in enumerate(offsets)}


def summarize(name, baseline, allocations, sites, library_crashes, library_leaks):
    crash_sites = {c.split()[0]: c.split()[1] for c in library_crashes}
    places = symbolize(set(sites) | set(crash_sites))
    nomem = {places[s] for s, outs in sites.items() if s in places
             and any(reason == "nomem" for _, reason in outs)}
    print(f"\nalloc-failure {name}: baseline {baseline}, {allocations} allocations failed one "
          f"by one, {len(places)} module call sites, {len(set(places.values()))} distinct "
          f"source places, {len(nomem)} ending in reason=nomem; {len(library_crashes)} "
          f"crashes inside a library: "
          f"{sorted({places.get(s, s) + ' in ' + lib for s, lib in crash_sites.items()})}; "
          f"{len(library_leaks)} leaks inside json-c")
    for place in sorted(nomem):
        print(f"  nomem via {place}")
    return places, nomem


def clear_entries(cache_dir):
    def reset():
        for path in glob.glob(os.path.join(cache_dir, "e-*")) + \
                glob.glob(os.path.join(cache_dir, "t-*")):
            os.unlink(path)
    return reset


@pytest.mark.slow  # every allocation of three logins, one by one
def test_alloc_failure_miss_hit_deny_config(h):
    """One walk per kind of login; together they must reach the module's NOMEM paths."""
    # the walks inject failures into the module's allocations: in the valgrind pass the helper
    # is the plain one (the other tests run it under valgrind; here that would be some 600
    # helper runs under valgrind, some 15 minutes, for nothing the injection is about)
    if VALGRIND:
        h.helper = h.helper_bin
        h.write_service()
    token = h.token()
    all_nomem = set()

    # a cache miss: the review through the helper, the result stored
    h.write_conf(cache_ttl=30)
    h.run("alice", token)                   # creates the cache directory and its key
    result = walk(h, "alice", h.token(), token, clear_entries(h.cache_dir), "miss")
    assert result[0] == ("PAM_SUCCESS", "ok"), result[0]
    all_nomem |= summarize("miss", *result)[1]

    # a cache hit: the entry stays, every run reads it
    h.run("alice", token)
    result = walk(h, "alice", token, token, lambda: None, "hit")
    assert result[0] == ("PAM_SUCCESS", "ok"), result[0]
    all_nomem |= summarize("hit", *result)[1]

    # a denial: a deny rule matches after the review (cache off)
    h.write_conf(cache_ttl=0)
    deny_token = h.token(ns="kube-system", name="admin")
    result = walk(h, "alice", deny_token, deny_token, lambda: None, "deny")
    assert result[0] == ("PAM_AUTH_ERR", "deny_rule"), result[0]
    all_nomem |= summarize("deny", *result)[1]

    # a refused configuration: no decision line at all
    h.write_conf(extra="no_such_key = 1")
    result = walk(h, "alice", token, token, lambda: None, "config")
    assert result[0] == ("PAM_SERVICE_ERR", None), result[0]
    summarize("config", *result)

    print(f"alloc-failure: {len(all_nomem)} distinct module places reached reason=nomem")
    assert len(all_nomem) >= 10, sorted(all_nomem)
