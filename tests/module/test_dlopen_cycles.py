"""10,000 pam_start / pam_authenticate / pam_end cycles in one process (tests/tools/pam_cycles.c):
libpam loads the module for every handle and unloads it at pam_end. A long-lived host must not
accumulate anything: open descriptors, threads, heap in use and resident memory are measured
after cycle 100, 5,000 and 10,000 and must not grow (beyond caches filling up early). Every 100th
cycle presents a token the API server refuses with an error (never cached), so the helper runs
too; the other cycles are cache hits. valgrind memcheck then runs a shorter series and must
report no error, no definite leak and no descriptor left open."""
import os
import re
import subprocess

import pytest

from harness import BUILD, SANITIZER, VALGRIND, VALGRIND_CMD

CYCLES_BIN = os.path.join(BUILD, "tests", "pam_cycles")
CYCLES = 2000 if SANITIZER or VALGRIND else 10000
VALGRIND_CYCLES = 150
# Heap in use grows by some 20 KiB over the first few thousand cycles (caches of libpam and
# OpenSSL filling up), then moves only in rare small steps: with cache hits only, measured
# every 2,000 cycles up to 20,000: +256 bytes between 4,000 and 10,000, +48 at 12,000, then
# flat; across runs the second half moved by 0 to 2,176 bytes (glibc's cache of freed chunks
# counts as in use). Any allocation leaked per cycle costs at least 32 bytes, 160,000 bytes
# over the second half, so a bound of 8 KiB still catches a leak of one chunk every 20
# logins. With a helper run every 100th cycle the heap moves by several KiB (json-c's and
# libc's own buffers), so that run gets a bound per helper run instead. Definite leaks are
# valgrind's and LeakSanitizer's to find (below, and the ASan pass).
HEAP_GROWTH_MAX = 64 * 1024                 # bytes, cycle 100 -> last
HEAP_GROWTH_SECOND_HALF_HITS = 8192         # bytes, cycle CYCLES/2 -> last, hits only
HEAP_GROWTH_SECOND_HALF_WITH_HELPER = 16384  # bytes: 100 helper runs, < 164 bytes each
RSS_GROWTH_MAX_KB = 1024


def run_cycles(h, token_file, odd_file, cycles, prefix=(), odd_every=100):
    cmd = [*prefix, CYCLES_BIN, "--confdir", h.confdir, "--service", "k8stoken-test",
           "--user", "alice", "--cycles", str(cycles), "--token", token_file,
           "--odd-token", odd_file, "--odd-every", str(odd_every), "--measure", "100",
           "--measure", str(cycles // 2)]
    proc = subprocess.run(cmd, env=h.driver_env(), capture_output=True, text=True,
                          errors="replace", timeout=900)
    h.captured += [proc.stdout, proc.stderr]
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-5000:])
    measures = {int(m[0]): dict(zip(("fds", "heap", "rss_kb", "threads"), map(int, m[1:])))
                for m in re.findall(r"^measure (\d+) fds (\d+) heap (\d+) rss_kb (\d+) "
                                    r"threads (\d+)$", proc.stdout, re.M)}
    results = {int(rc): int(n) for rc, n in re.findall(r"^result (\d+) (\d+)$", proc.stdout, re.M)}
    return measures, results, proc


def tokens(h):
    good = h.token()
    # a token of the right shape whose signature the API server refuses, with an error
    # text: a definitive denial that is never cached, so the helper runs every time
    bad = good[:-8] + ("AAAAAAAA" if not good.endswith("AAAAAAAA") else "BBBBBBBB")
    paths = []
    for name, tok in (("good", good), ("bad", bad)):
        path = os.path.join(h.tmp, f"token-{name}")
        h._write_private(path, tok)
        paths.append(path)
    h.secrets.append(bad)
    return paths


@pytest.mark.slow  # 10,000 transactions
def test_10000_cycles_keep_fds_memory_and_threads_constant(h):
    h.write_conf(cache_ttl=3600)
    good, bad = tokens(h)
    measures, results, _ = run_cycles(h, good, bad, CYCLES)
    first, half, last = measures[100], measures[CYCLES // 2], measures[CYCLES]
    print(f"\ndlopen cycles: after 100: {first}; after {CYCLES // 2}: {half}; "
          f"after {CYCLES}: {last}")
    assert results == {0: CYCLES - CYCLES // 100, 7: CYCLES // 100}, results
    assert last["fds"] == first["fds"], (first, last)
    assert last["threads"] == first["threads"] == 1, (first, last)
    if SANITIZER:
        # ASan's allocator keeps freed memory in quarantine and mallinfo2 does not see it:
        # LeakSanitizer checks at exit instead (a leak makes the program exit non-zero)
        return
    assert last["heap"] - first["heap"] <= HEAP_GROWTH_MAX, (first, last)
    assert last["heap"] - half["heap"] <= HEAP_GROWTH_SECOND_HALF_WITH_HELPER, (half, last)
    assert last["rss_kb"] - first["rss_kb"] <= RSS_GROWTH_MAX_KB, (first, last)

    # cache hits only: the heap in use must stand still once the caches are warm
    measures, results, _ = run_cycles(h, good, bad, CYCLES, odd_every=CYCLES + 1)
    first, half, last = measures[100], measures[CYCLES // 2], measures[CYCLES]
    print(f"cache hits only: after 100: {first}; after {CYCLES // 2}: {half}; "
          f"after {CYCLES}: {last}")
    assert results == {0: CYCLES}, results
    assert last["heap"] - half["heap"] <= HEAP_GROWTH_SECOND_HALF_HITS, (half, last)


def test_cycles_under_valgrind_no_leak_no_open_descriptor(h):
    """valgrind's exit status says errors and definite leaks (--error-exitcode); its
    --track-fds list at exit must hold nothing but the standard descriptors and its own log."""
    vg_log = os.path.join(h.tmp, "vg-cycles.log")
    prefix = () if VALGRIND or SANITIZER else \
        (*VALGRIND_CMD[:-1], "--track-fds=yes", f"--log-file={vg_log}")
    h.write_conf(cache_ttl=3600)
    good, bad = tokens(h)
    measures, results, proc = run_cycles(h, good, bad, VALGRIND_CYCLES, prefix)
    assert results == {0: VALGRIND_CYCLES - 1, 7: 1}, results
    if prefix:
        log = open(vg_log, errors="replace").read()
        h.captured.append(log)
        open_fds = re.findall(r"^==\d+== Open (?:file descriptor|\S+ socket) (\d+):? ?(.*)$", log, re.M)
        left = [(fd, what) for fd, what in open_fds if fd not in ("0", "1", "2") and what != vg_log]
        assert left == [], log[-5000:]
