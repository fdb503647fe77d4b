#!/usr/bin/python3
"""Runs every test suite of `make check` and ends with one line: "N passed, N failed, N skipped".

Suites: the repository checks, cmocka unit tests, the module's exported surface, the test API
server's own pytest suite, the module tests through real libpam, the end-to-end tests with the
real ssh/sshd/sudo/kubectl, the module against a real kube-apiserver (tests/kube), every
fuzz target once over its corpus; then the unit and module tests again under ASan+UBSan, and
the module tests under valgrind memcheck.

Counts come from machine-readable reports (cmocka's XML, pytest's JUnit XML), never from
console text. A suite fails when its report is missing, when it ran fewer tests than its
minimum (a suite that quietly collects nothing is a failure, not a pass), or when its runner
exits non-zero. Under CI=true every skipped test is a failure: what CI does not run is not
tested. Every skipped test is named with its reason at the end.

KT_CHECK_QUICK=1 (make check-quick) leaves out the sanitizer and valgrind passes, which run
the module suite in 2 processes (pytest-xdist).

KT_CHECK_FAST=1 (make check-fast) is the tier without root: the repository checks, the unit
tests, the module's surface, the test API server's suite and the module tests not marked
needs_root or slow (pytest.ini), against a build in build-user whose trusted owner
(TRUSTED_UID, pam_k8stoken/util/trusted_owner.h) is the user running it; its pytest suites
run in 4 processes (pytest-xdist). The tests it deselects are counted as such, not as
skipped: `make check` runs them.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTEST = ["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"]
CI = os.environ.get("CI") == "true"

# The fewest tests each suite may run. A suite that runs fewer lost tests (a collection
# error, a module that stopped importing, a glob that matches nothing): that is a failure.
MINIMUM = {
    "repository": 4,
    "unit": 60,
    "surface": 3,
    "test API server": 70,
    "module": 330,
    "end to end": 100,
    "real cluster": 18,
    "fuzz": 9,
    # the fast tier's module suite: without the tests marked needs_root or slow
    "module without root": 550,
}

FAST_BUILD = "build-user"
# the fast tier runs its pytest suites in this many processes (pytest-xdist): the tests mostly
# wait for TLS handshakes, helpers and timeouts, so more than the 2 cores of a small machine
FAST_WORKERS = ["-n", "4"]
# the ASan+UBSan and valgrind passes of the module suite run in 2 processes: they are bound
# by the CPU (valgrind alone took 30 minutes in one), and the harness already allows them
# the longer timeouts of a slow helper (tests/lib/harness.py)
CHECKED_WORKERS = ["-n", "2"]
# what the fast tier leaves out of the module suite, and why (pytest.ini registers the markers)
FAST_DESELECT = (("needs_root", "need root"), ("slow and not needs_root", "slow"))

totals = {"passed": 0, "failed": 0, "skipped": 0}
deselected = []      # (count, why) of the tests a tier left out
skipped_tests = []   # (suite, test, reason)
failed_suites = []


def report(suite, passed, failed, skipped=0, skips=()):
    totals["passed"] += passed
    totals["failed"] += failed
    totals["skipped"] += skipped
    skipped_tests.extend((suite, name, why) for name, why in skips)
    if failed:
        failed_suites.append(suite)
    print(f"== {suite}: {passed} passed, {failed} failed, {skipped} skipped", flush=True)


def run(cmd, env=None):
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace")
    sys.stdout.write(proc.stdout)
    return proc


def junit_counts(paths):
    """(passed, failed, [(test, skip reason)]) from JUnit-style XML files (cmocka, pytest)."""
    passed = failed = 0
    skips = []
    for path in paths:
        for case in ET.parse(path).getroot().iter("testcase"):
            name = ".".join(filter(None, (case.get("classname"), case.get("name"))))
            outcome = {child.tag for child in case}
            if outcome & {"failure", "error"}:
                failed += 1
                for child in case:
                    if child.tag in ("failure", "error"):
                        print(f"FAILED {name}: {(child.get('message') or child.text or '')[:500]}")
            elif "skipped" in outcome:
                skip = next(c for c in case if c.tag == "skipped")
                skips.append((name, skip.get("message") or (skip.text or "").strip()))
            else:
                passed += 1
    return passed, failed, skips


def finish_suite(suite, tier, proc, reports):
    """Counts a suite from its reports; a missing report, too few tests or a runner that
    failed without a failed test count as one failure each."""
    present = [p for p in reports if os.path.exists(p)]
    if not present:
        print(f"FAILED {suite}: no test report was written (crash or collection error?)")
        report(suite, 0, 1)
        return
    passed, failed, skips = junit_counts(present)
    ran = passed + failed + len(skips)
    if ran < MINIMUM[tier]:
        print(f"FAILED {suite}: ran {ran} tests, fewer than the {MINIMUM[tier]} this suite has")
        failed += 1
    if proc.returncode != 0 and failed == 0:
        print(f"FAILED {suite}: runner exited {proc.returncode} without a failed test")
        failed += 1
    if CI and skips:
        print(f"FAILED {suite}: {len(skips)} skipped under CI=true")
        failed += 1
    report(suite, passed, failed, len(skips), skips)


def unit_suite(build, reports_dir):
    tests_dir = os.path.join(ROOT, build, "tests")
    binaries = sorted(n for n in os.listdir(tests_dir) if n.startswith("test_"))
    returncode = 0
    xml_files = []
    for name in binaries:
        out = os.path.join(reports_dir, f"cmocka-{build}-{name}")
        os.mkdir(out)
        env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="XML",
                   CMOCKA_XML_FILE=os.path.join(out, "%g.xml"))
        proc = run([os.path.join(tests_dir, name)], env=env)
        found = [os.path.join(out, f) for f in sorted(os.listdir(out))]
        if proc.returncode != 0 or not found:
            print(f"FAILED {name}: exit {proc.returncode}, {len(found)} report(s)")
            returncode = 1
        xml_files += found
    finish_suite(f"unit ({build})", "unit", subprocess.CompletedProcess([], returncode),
                 xml_files)


def surface_suite(build):
    module = os.path.join(build, "pam_k8stoken.so")
    proc = run([os.path.join(build, "tests", "dlopen_check"), module])
    ok = proc.stdout.count("\nok ") + proc.stdout.startswith("ok ")
    bad = proc.stdout.count("FAIL") + (1 if proc.returncode else 0)
    symbols = subprocess.run(["nm", "-D", "--defined-only", module], cwd=ROOT,
                             capture_output=True, text=True).stdout.splitlines()
    exported = sorted(line.split()[-1] for line in symbols if line.split()[1] in "TDBRVWi")
    undefined = subprocess.run(["nm", "-D", "-u", module], cwd=ROOT, capture_output=True,
                               text=True).stdout.split()
    want = ["pam_sm_acct_mgmt", "pam_sm_authenticate", "pam_sm_setcred"]
    print("exported:", " ".join(exported))
    only_pam = exported == want
    no_exit = not any(s.split("@")[0] in ("exit", "_exit") for s in undefined)
    print(("ok" if only_pam else "FAIL"), "only pam_sm_* exported")
    print(("ok" if no_exit else "FAIL"), "module does not call exit/_exit")
    passed, failed = ok + only_pam + no_exit, bad + (not only_pam) + (not no_exit)
    if passed + failed < MINIMUM["surface"]:
        failed += 1
    report(f"module surface ({build})", passed, failed)


def pytest_suite(suite, tier, path, reports_dir, extra_env=None, select=()):
    env = dict(os.environ)
    env.update(extra_env or {})
    xml = os.path.join(reports_dir, f"pytest-{len(os.listdir(reports_dir))}.xml")
    proc = run(PYTEST + [f"--junitxml={xml}", "-o", "junit_family=xunit2", *select, path],
               env=env)
    finish_suite(suite, tier, proc, [xml])


def collected(path, marks):
    """The test ids of path that carry marks (a -m expression), from pytest's collection."""
    proc = subprocess.run(PYTEST + ["--collect-only", "-m", marks, path], cwd=ROOT,
                          env=dict(os.environ, KT_BUILD=FAST_BUILD), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode not in (0, 5):   # 5: none carries them
        sys.stdout.write(proc.stdout)
        return None
    return [line for line in proc.stdout.splitlines() if "::" in line]


def fast_module_suite(reports_dir):
    """The module tests that need no root and are not slow; those left out are counted."""
    suite = "module without root"
    for marks, why in FAST_DESELECT:
        ids = collected("tests/module", marks)
        if ids is None:
            print(f"FAILED {suite}: collecting the tests marked {marks} failed")
            report(suite, 0, 1)
            return
        deselected.append((len(ids), why))
    expr = " or ".join(f"({marks})" for marks, _ in FAST_DESELECT)
    pytest_suite(suite, suite, "tests/module", reports_dir, {"KT_BUILD": FAST_BUILD},
                 FAST_WORKERS + ["-m", f"not ({expr})"])


def real_cluster_suite(reports_dir):
    """The module against a real kube-apiserver: `make kube` builds (or reuses) etcd,
    kube-apiserver and kube-controller-manager from the Go module proxy first."""
    suite = "real cluster: kube-apiserver, etcd, kube-controller-manager"
    proc = run(["sh", "tests/kube/build.sh"])
    if proc.returncode == 3:
        why = "no Go toolchain to build kube-apiserver (tests/kube/build.sh)"
        print(f"SKIPPED the real-cluster tier: {why}")
        report(suite, 0, 1 if CI else 0, 1, [("tests/kube", why)])
    elif proc.returncode != 0:
        print(f"FAILED {suite}: tests/kube/build.sh exited {proc.returncode}")
        report(suite, 0, 1)
    else:
        pytest_suite(suite, "real cluster", "tests/kube", reports_dir, {"KT_BUILD": "build"})


def fuzz_replay_suite():
    """Every libFuzzer target once over its corpus (seeds in the tree and what earlier runs
    found): a regression check; `make fuzz` (CI) fuzzes each for a minute."""
    suite = "fuzz targets over their corpora"
    proc = run(["make", "-s", "BUILD=build", "fuzz", "FUZZ_SECONDS=0"])
    counts = re.findall(r"^(\d+) passed, (\d+) failed$", proc.stdout, re.M)
    passed, failed = (int(counts[-1][0]), int(counts[-1][1])) if counts else (0, 0)
    if passed + failed < MINIMUM["fuzz"]:
        print(f"FAILED {suite}: ran {passed + failed} targets, fewer than {MINIMUM['fuzz']}")
        failed += 1
    if proc.returncode != 0 and failed == 0:
        failed = 1
    report(suite, passed, failed)


def build(directory, *flags):
    proc = run(["make", "-s", f"BUILD={directory}", "WERROR=1", *flags, "all", "test-programs"])
    if proc.returncode != 0:
        report(f"build {directory}", 0, 1)
        return False
    return True


def fast_build():
    """build-user with this user as the trusted owner; rebuilt from scratch when an earlier
    one trusted another uid (make sees no changed source then)."""
    uid = str(os.geteuid())
    stamp = os.path.join(ROOT, FAST_BUILD, "trusted-uid")
    if os.path.exists(os.path.join(ROOT, FAST_BUILD)):
        try:
            with open(stamp) as f:
                same = f.read().strip() == uid
        except OSError:
            same = False
        if not same:
            shutil.rmtree(os.path.join(ROOT, FAST_BUILD))
    if not build(FAST_BUILD, f"TRUSTED_UID={uid}"):
        return False
    with open(stamp, "w") as f:
        f.write(uid + "\n")
    return True


def fast_tier(reports):
    """make check-fast: no root, no sanitizers, no valgrind, no sshd, no real cluster."""
    pytest_suite("repository", "repository", "tests/repo", reports)
    if fast_build():
        unit_suite(FAST_BUILD, reports)
        surface_suite(FAST_BUILD)
        # one test API server per test file (conftest.py): each file's tests in one process
        pytest_suite("test API server", "test API server", "tests/apiserver", reports, None,
                     FAST_WORKERS + ["--dist", "loadfile"])
        fast_module_suite(reports)


def full_tiers(reports, quick):
    """make check (and make check-quick without the sanitizer and valgrind passes)."""
    pytest_suite("repository", "repository", "tests/repo", reports)
    if build("build"):
        unit_suite("build", reports)
        surface_suite("build")
        pytest_suite("test API server", "test API server", "tests/apiserver", reports)
        pytest_suite("module", "module", "tests/module", reports, {"KT_BUILD": "build"})
        pytest_suite("end to end: clients, sshd, sudo", "end to end", "tests/e2e", reports,
                     {"KT_BUILD": "build"})
        real_cluster_suite(reports)
        fuzz_replay_suite()
    if not quick:
        if build("build-asan", "SANITIZE=1"):
            unit_suite("build-asan", reports)
            pytest_suite("module under ASan+UBSan", "module", "tests/module", reports,
                         {"KT_BUILD": "build-asan", "KT_SANITIZER": "1"}, CHECKED_WORKERS)
        pytest_suite("module under valgrind", "module", "tests/module", reports,
                     {"KT_BUILD": "build", "KT_VALGRIND": "1"}, CHECKED_WORKERS)


def main():
    quick = os.environ.get("KT_CHECK_QUICK") == "1"
    fast = os.environ.get("KT_CHECK_FAST") == "1"
    reports = tempfile.mkdtemp(prefix="kt-check-")
    try:
        if fast:
            fast_tier(reports)
        else:
            full_tiers(reports, quick)
    finally:
        shutil.rmtree(reports, ignore_errors=True)
    return summary()


def summary():
    for suite, name, why in skipped_tests:
        print(f"SKIPPED [{suite}] {name}: {why}")
    if failed_suites:
        print("suites with failures: " + "; ".join(failed_suites))
    for count, why in deselected:
        print(f"{count} deselected ({why}; run by make check)")
    print(f"{totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
