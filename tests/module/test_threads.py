"""pam_authenticate in 8 threads at once, each with its own PAM handle (tests/tools/pam_threads.c),
against a build of the module with ThreadSanitizer: the same token in several threads (one
review, then cache hits), different tokens, allowed and denied logins, a non-token answer. No
TSan report (tsan.supp names the few libraries of the test set-up and of libpam whose
reports are not the module's), every result the expected one, every decision line the expected one
(docs/design.md §2.2 says what state the module shares between threads and why it is safe).

The TSan build is made here (make BUILD=$KT_TSAN_BUILD SANITIZE=thread, default build-tsan;
make does nothing when it is up to date; run as another user than root, build-user-tsan with
that user as the trusted owner)."""
import collections
import os
import re
import subprocess

import pytest

from harness import OWNER, ROOT

TSAN_BUILD = os.path.join(ROOT, os.environ.get("KT_TSAN_BUILD",
                                               "build-tsan" if OWNER == 0 else "build-user-tsan"))
THREADS = os.path.join(TSAN_BUILD, "tests", "pam_threads")
ROUNDS = 4


def tsan_build():
    subprocess.run(["make", "-s", f"BUILD={TSAN_BUILD}", "SANITIZE=thread", f"TRUSTED_UID={OWNER}",
                    "all", os.path.join(TSAN_BUILD, "tests", "pam_threads")], cwd=ROOT, check=True)


def decisions(log_text):
    """(verdict, user, sa, reason, cache) of every decision line."""
    out = []
    for line in log_text.splitlines():
        m = re.search(r"pam_k8stoken\([^)]*\): (allow|deny) (.*)$", line)
        if m:
            f = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', m.group(2)))
            out.append((m.group(1), f.get("user"), f.get("sa"), f.get("reason"), f.get("cache")))
    return out


@pytest.mark.slow  # builds the module with TSan first
def test_eight_threads_same_and_different_tokens_under_tsan(h):
    tsan_build()
    # TSan makes every process slower: deadlines that a loaded machine cannot miss
    h.write_conf(cache_ttl=30, timeout=20, connect_timeout=10)
    service = "k8stoken-threads"
    with open(os.path.join(h.confdir, service), "w") as f:
        f.write(f"auth required {TSAN_BUILD}/pam_k8stoken.so conf={h.conf} helper={h.helper}\n")
    tokens = {"alice": h.token(), "bob": h.token(ns="team-x", name="bob"),
              "denied": h.token(ns="kube-system", name="admin"), "password": "hunter2"}
    files = {}
    for name, tok in tokens.items():
        files[name] = os.path.join(h.tmp, f"token-{name}")
        h._write_private(files[name], tok)
    specs = [f"alice:{files['alice']}:0"] * 3 + [f"bob:{files['bob']}:0"] * 2 + [
        f"alice:{files['denied']}:7", f"alice:{files['password']}:7", f"bob:{files['alice']}:7"]
    assert len(specs) == 8
    supp = os.path.join(ROOT, "tests", "module", "tsan.supp")
    env = h.driver_env({"TSAN_OPTIONS": f"halt_on_error=0 exitcode=66 suppressions={supp} "
                                        f"log_path={h.reports}/tsan"})
    # a ThreadSanitizer program: never the ASan runtime of the sanitizer pass's preload
    env["LD_PRELOAD"] = "libnss_wrapper.so"
    env.pop("ASAN_OPTIONS", None)
    proc = subprocess.run([THREADS, "--confdir", h.confdir, "--service", service,
                           "--rounds", str(ROUNDS), *specs], env=env, capture_output=True,
                          text=True, errors="replace", timeout=300)
    log_text = open(env["KT_TEST_SYSLOG"], errors="replace").read()
    h.captured += [proc.stdout, proc.stderr, log_text]
    # a TSan report lands in reports/ and fails the test through the h fixture too
    assert proc.returncode == 0, (proc.returncode, proc.stdout, log_text, proc.stderr[-3000:],
                                  "\n".join(h.reports_found())[:12000])
    assert proc.stdout.splitlines()[-1] == "threads ok", proc.stdout
    results = [l for l in proc.stdout.splitlines() if l.startswith("thread ")]
    assert len(results) == 8 * ROUNDS, proc.stdout

    seen = collections.Counter((v, u, sa, reason) for v, u, sa, reason, _ in decisions(log_text))
    assert seen == collections.Counter({
        ("allow", "alice", "pam/pam-user", "ok"): 3 * ROUNDS,
        ("allow", "bob", "team-x/bob", "ok"): 2 * ROUNDS,
        ("deny", "alice", "kube-system/admin", "deny_rule"): ROUNDS,
        ("deny", "(unknown)", None, "not_jwt"): ROUNDS,
        ("deny", "bob", "pam/pam-user", "not_mapped"): ROUNDS,
    }), seen
    caches = collections.Counter(c for *_, c in decisions(log_text))
    assert caches["hit"] > 0 and caches["miss"] > 0, caches
