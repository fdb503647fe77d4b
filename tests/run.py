#!/usr/bin/python3
"""Runs every test suite of `make check` and ends with one line: "N passed, N failed".

Suites: cmocka unit tests, the module's exported surface, the test API server's own
pytest suite, the module tests through real libpam, the end-to-end tests with the real
ssh/sshd/sudo/kubectl; then the unit and module tests again under ASan+UBSan, and the
module tests under valgrind memcheck.
Set KT_CHECK_QUICK=1 to skip the sanitizer and valgrind passes while developing.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTEST = ["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"]
totals = {"passed": 0, "failed": 0, "skipped": 0}


def report(suite, passed, failed, skipped=0):
    totals["passed"] += passed
    totals["failed"] += failed
    totals["skipped"] += skipped
    print(f"== {suite}: {passed} passed, {failed} failed, {skipped} skipped", flush=True)


def run(cmd, env=None):
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace")
    sys.stdout.write(proc.stdout)
    return proc


def unit_suite(build):
    tests_dir = os.path.join(ROOT, build, "tests")
    for name in sorted(os.listdir(tests_dir)):
        if not name.startswith("test_"):
            continue
        proc = run([os.path.join(tests_dir, name)])
        passed = re.search(r"\[  PASSED  \] (\d+) test", proc.stdout)
        failed = re.search(r"\[  FAILED  \] (\d+) test", proc.stdout)
        p = int(passed.group(1)) if passed else 0
        f = int(failed.group(1)) if failed else 0
        if proc.returncode != 0 and f == 0:
            f = 1  # crashed or sanitizer abort: count the binary as failed
        report(f"unit {name} ({build})", p, f)


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
    no_exit = not any(s in ("exit", "_exit", "exit@GLIBC_2.2.5", "_exit@GLIBC_2.2.5") for s in undefined)
    print(("ok" if only_pam else "FAIL"), "only pam_sm_* exported")
    print(("ok" if no_exit else "FAIL"), "module does not call exit/_exit")
    report(f"module surface ({build})", ok + only_pam + no_exit,
           bad + (not only_pam) + (not no_exit))


def pytest_suite(suite, path, extra_env=None):
    env = dict(os.environ)
    env.update(extra_env or {})
    proc = run(PYTEST + [path], env=env)
    counts = {k: 0 for k in ("passed", "failed", "skipped", "error")}
    for n, kind in re.findall(r"(\d+) (passed|failed|skipped|errors?)", proc.stdout.splitlines()[-1]
                              if proc.stdout.strip() else ""):
        counts["error" if kind.startswith("error") else kind] += int(n)
    failed = counts["failed"] + counts["error"]
    if proc.returncode not in (0, 5) and failed == 0:
        failed = 1
    report(suite, counts["passed"], failed, counts["skipped"])


def build(directory, *flags):
    proc = run(["make", "-s", f"BUILD={directory}", "WERROR=1", *flags, "all", "test-programs"])
    if proc.returncode != 0:
        report(f"build {directory}", 0, 1)
        return False
    return True


def main():
    quick = os.environ.get("KT_CHECK_QUICK") == "1"
    if build("build"):
        unit_suite("build")
        surface_suite("build")
        pytest_suite("test API server", "tests/apiserver")
        pytest_suite("module", "tests/module", {"KT_BUILD": "build"})
        pytest_suite("end to end: clients, sshd, sudo", "tests/e2e", {"KT_BUILD": "build"})
    if not quick:
        if build("build-asan", "SANITIZE=1"):
            unit_suite("build-asan")
            pytest_suite("module under ASan+UBSan", "tests/module",
                         {"KT_BUILD": "build-asan", "KT_SANITIZER": "1"})
        pytest_suite("module under valgrind", "tests/module",
                     {"KT_BUILD": "build", "KT_VALGRIND": "1"})
    print(f"{totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
    return 1 if totals["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
