#!/usr/bin/python3
"""Runs every libFuzzer target of tests/fuzz/ for a while: `make fuzz FUZZ_SECONDS=N`.

usage: run.py --dir FUZZ_DIR --seconds N TARGET...

Each target starts from its seed corpus in the tree (tests/fuzz/corpus/NAME, read only) and
its working corpus FUZZ_DIR/corpus/NAME (kept between runs), with the dictionary
tests/fuzz/NAME.dict when there is one. A crash, a leak, a timeout or a broken invariant
(an abort in the target) saves the input as FUZZ_DIR/crash-NAME-* (or leak-, timeout-,
oom-) and fails the target. FUZZ_SECONDS=0 runs each target once over its corpus only.
Prints executions per second and total executions per target, and ends with one line
"N passed, N failed".
"""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def stat(text, name):
    m = re.search(rf"^stat::{name}:\s+(\d+)", text, re.M)
    return int(m.group(1)) if m else None


def run_target(binary, fuzz_dir, seconds):
    name = os.path.basename(binary)
    seeds = os.path.join(HERE, "corpus", name)
    work = os.path.join(fuzz_dir, "corpus", name)
    os.makedirs(work, exist_ok=True)
    cmd = [binary, f"-artifact_prefix={os.path.join(fuzz_dir, 'crash-' + name + '-')}",
           "-print_final_stats=1", "-timeout=10", "-rss_limit_mb=2048", "-close_fd_mask=1"]
    if seconds > 0:
        cmd.append(f"-max_total_time={seconds}")
    else:
        cmd.append("-runs=0")
    dictionary = os.path.join(HERE, f"{name}.dict")
    if os.path.exists(dictionary):
        cmd.append(f"-dict={dictionary}")
    cmd.append(work)
    if os.path.isdir(seeds):
        cmd.append(seeds)
    log_path = os.path.join(fuzz_dir, f"{name}.log")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                              timeout=seconds + 600)
    text = open(log_path, errors="replace").read()
    runs = stat(text, "number_of_executed_units")
    rate = stat(text, "average_exec_per_sec")
    ok = proc.returncode == 0
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {runs if runs is not None else '?'} executions, "
          f"{rate if rate is not None else '?'} exec/s, {seconds} s (log {log_path})", flush=True)
    if not ok:
        for line in text.splitlines():
            if ("invariant broken" in line or "ERROR:" in line or "SUMMARY:" in line or
                    "Test unit written to" in line or "runtime error" in line):
                print("     " + line)
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("targets", nargs="+")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    passed = failed = 0
    for binary in args.targets:
        if run_target(os.path.abspath(binary), os.path.abspath(args.dir), args.seconds):
            passed += 1
        else:
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
