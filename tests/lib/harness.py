"""The module tests' world: a private PAM service directory and config per test,
nss_wrapper users, and a runner for the real libpam driver (tests/tools/pam_driver.c)
against the test API server. Everything captured is kept so that a test can scan it
for any 16-character piece of the tokens used (docs/security.md L01).

In the sanitizer pass (KT_SANITIZER=1) and the valgrind pass (KT_VALGRIND=1) the helper
and the k8stoken tool are checked too: the module runs the helper through a `helper=`
wrapper script that execs it with ASAN_OPTIONS/UBSAN_OPTIONS log_path (the module gives
the helper a fixed environment, so the wrapper sets them) or under valgrind with a
log file; every report lands in the test's reports/ directory and fails the test."""
import glob
import os
import re
import shutil
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ktest

BUILD = os.path.join(ROOT, os.environ.get("KT_BUILD", "build"))
# The owner the build trusts for the config, credentials and cache (pam_k8stoken/util/
# trusted_owner.h): root, or, run as another user (make check-fast), that user, with KT_BUILD
# a build made for it (make BUILD=build-user TRUSTED_UID=$(id -u)). Tests that need root
# (other users, chown, system files) are marked needs_root.
OWNER = os.geteuid()
MODULE = os.path.join(BUILD, "pam_k8stoken.so")
HELPER = os.path.join(BUILD, "k8stoken-review")
DRIVER = os.path.join(BUILD, "tests", "pam_driver")
SERVICE = "k8stoken-test"
# The same stack for the many-process load tests (spawn()), with the plain helper in the
# valgrind pass: 500 helpers under valgrind would take an hour; the other tests check it.
LOAD_SERVICE = "k8stoken-load"
SANITIZER = os.environ.get("KT_SANITIZER") == "1"
VALGRIND = os.environ.get("KT_VALGRIND") == "1"
# Under valgrind every process start costs ~0.5 s: deadlines are then not measurable.
TIMED = not VALGRIND
# The review deadlines of the test config. Under valgrind the helper itself runs under
# valgrind: its TLS handshake alone can take a second, so the deadlines are longer.
CONNECT_TIMEOUT = 5 if VALGRIND else 1
TIMEOUT = 10 if VALGRIND else 3
# The module's own limit for one review: timeout plus 1 s for the helper (decide.c).
DEADLINE_MS = TIMEOUT * 1000 + 1000
AUDIENCE = "pam-test"
VALGRIND_CMD = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                "--errors-for-leak-kinds=definite", "--track-fds=no"]

PAM_RESULTS = {
    0: "PAM_SUCCESS", 4: "PAM_SYSTEM_ERR", 3: "PAM_SERVICE_ERR", 5: "PAM_BUF_ERR",
    6: "PAM_PERM_DENIED", 7: "PAM_AUTH_ERR", 9: "PAM_AUTHINFO_UNAVAIL",
    10: "PAM_USER_UNKNOWN", 19: "PAM_CONV_ERR", 25: "PAM_IGNORE", 31: "PAM_INCOMPLETE",
}

USERS = [  # name, uid
    ("root", 0), ("sshd", 101), ("nobody", 65534), ("sysuser", 500),
    ("alice", 1001), ("bob", 1002), ("deploy", 1003), ("robot", 1004),
]


def nss_files(directory):
    passwd = os.path.join(directory, "passwd")
    group = os.path.join(directory, "group")
    with open(passwd, "w") as f:
        for name, uid in USERS:
            f.write(f"{name}:x:{uid}:{uid}:{name}:/tmp:/bin/sh\n")
    with open(group, "w") as f:
        for name, uid in USERS:
            f.write(f"{name}:x:{uid}:\n")
    return passwd, group


def pam_module_dir():
    """Where libpam-modules installed pam_faillock.so, for this machine's architecture."""
    multiarch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True,
                               text=True).stdout.strip()
    candidates = [f"/usr/lib/{multiarch}/security", f"/lib/{multiarch}/security"] if multiarch else []
    candidates += sorted(os.path.dirname(p) for p in glob.glob("/usr/lib/*/security/pam_faillock.so"))
    for d in candidates:
        if os.path.exists(os.path.join(d, "pam_faillock.so")):
            return d
    raise AssertionError(f"pam_faillock.so not found in {candidates} (package libpam-modules)")


def sanitizer_preload():
    out = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                         text=True).stdout.strip()
    return os.path.realpath(out)


def escaped(text):
    """The driver's rendering of a string: bytes outside printable ASCII as \\xHH."""
    return "".join(chr(b) if 0x20 <= b <= 0x7e and b != 0x5c else f"\\x{b:02x}"
                   for b in text.encode())


class Result:
    def __init__(self, proc, log_text, elapsed):
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.elapsed = elapsed
        self.log = log_text
        self.exit = proc.returncode
        self.code = None
        self.acct = None
        self.prompts = []
        self.env = {}
        self.user = None
        self.faildelay = None
        for line in proc.stdout.splitlines():
            word, _, rest = line.partition(" ")
            if word == "authenticate":
                self.code = PAM_RESULTS.get(int(rest.split()[0]), rest)
            elif word == "acct":
                self.acct = PAM_RESULTS.get(int(rest.split()[0]), rest)
            elif word == "prompt":
                self.prompts.append(rest)
            elif word == "env":
                k, _, v = rest.partition("=")
                self.env[k] = v
            elif word == "user":
                self.user = rest
            elif word == "faildelay":
                self.faildelay = int(rest)

    def log_lines(self):
        """The module's messages without the "syslog PRIO pam_k8stoken(service:type): " prefix."""
        return [re.sub(r"^syslog \d+ pam_k8stoken\([^)]*\): ", "", l)
                for l in self.log.splitlines() if l.startswith("syslog ")]

    def decision(self):
        """The module's one decision line, parsed into a dict of its key=value fields."""
        for line in self.log_lines():
            if line.startswith(("allow ", "deny ")):
                fields = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line))
                fields["verdict"] = line.split()[0]
                return fields
        return None

    def __repr__(self):
        return f"<Result {self.code} log={self.log!r} stdout={self.stdout!r} stderr={self.stderr!r}>"


class Harness:
    """One test's world: a config file, a PAM service directory, users, a driver runner."""

    def __init__(self, api, tmp):
        self.api = api
        self.tmp = tmp
        self.module, self.helper_bin, self.driver = MODULE, HELPER, DRIVER
        # sanitizer and valgrind reports of the helper and the tool; writable by the
        # unprivileged users some tests run as
        self.reports = os.path.join(tmp, "reports")
        os.mkdir(self.reports)
        os.chmod(self.reports, 0o1777)
        self.helper = self._helper_wrapper()
        self.secrets = [api.reviewer_token, api.admin_token]
        self.captured = []
        self.passwd, self.group = nss_files(tmp)
        self.conf = os.path.join(tmp, "pam_k8stoken.conf")
        self.reviewer_file = os.path.join(tmp, "reviewer.token")
        self._write_private(self.reviewer_file, api.reviewer_token)
        self.confdir = os.path.join(tmp, "pam.d")
        os.mkdir(self.confdir)
        self.args = ""
        self.write_conf()
        self.write_service()

    @staticmethod
    def _write_private(path, text, mode=0o600):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def _helper_wrapper(self):
        """The helper= program: the helper itself, or (sanitizer and valgrind passes) a
        script that execs it so that its reports land in self.reports. The token comes on
        stdin and the answer goes to stdout, both passed through by exec."""
        if not (SANITIZER or VALGRIND):
            return self.helper_bin
        path = os.path.join(self.tmp, "helper-checked")
        if VALGRIND:
            run = " ".join(["/usr/bin/" + VALGRIND_CMD[0]] + VALGRIND_CMD[1:] +
                           [f"--log-file={self.reports}/vg-helper.%p", self.helper_bin])
        else:
            run = (f"export ASAN_OPTIONS={self.sanitizer_options('asan-helper')}\n"
                   f"export UBSAN_OPTIONS={self.sanitizer_options('asan-helper', ubsan=True)}\n"
                   f"exec {self.helper_bin}")
        with open(path, "w") as f:
            f.write(f'#!/bin/sh\n{run} "$@"\n' if SANITIZER else f'#!/bin/sh\nexec {run} "$@"\n')
        os.chmod(path, 0o755)
        return path

    def sanitizer_options(self, name, ubsan=False):
        """ASAN_OPTIONS (or UBSAN_OPTIONS) that write every report to reports/NAME.PID."""
        log = f"log_path={self.reports}/{name}"
        if ubsan:
            return f"{log}:print_stacktrace=1:halt_on_error=1"
        return f"{log}:detect_leaks=1:detect_stack_use_after_return=1"

    def reports_found(self):
        """Every non-empty sanitizer or valgrind report of this test, as text."""
        found = []
        for path in sorted(glob.glob(os.path.join(self.reports, "*"))):
            text = open(path, errors="replace").read()
            if os.path.basename(path).startswith("vg-"):
                # valgrind's own notes ("--PID-- WARNING: unhandled syscall 434", i.e.
                # pidfd_open, which spawn.c falls back from) are not reports; errors are "==PID=="
                if not re.search(r"^==\d+==", text, re.M):
                    continue
            if text:
                found.append(f"--- {os.path.basename(path)}\n{text}")
        return found

    def check_reports(self):
        found = self.reports_found()
        assert not found, "sanitizer/valgrind reports:\n" + "\n".join(found)[:20000]

    def tool_command(self, args, name="tool"):
        """The k8stoken tool with args (its --helper is the checked one), under valgrind in
        the valgrind pass; run it with tool_env()."""
        cmd = [os.path.join(os.path.dirname(self.helper_bin), "k8stoken"), *args]
        if VALGRIND:
            cmd = VALGRIND_CMD + [f"--log-file={self.reports}/vg-{name}.%p"] + cmd
        return cmd

    def tool_env(self, name="tool"):
        env = self.driver_env()
        if SANITIZER:
            env["ASAN_OPTIONS"] = self.sanitizer_options(f"asan-{name}")
            env["UBSAN_OPTIONS"] = self.sanitizer_options(f"asan-{name}", ubsan=True)
        return env

    def stage_for_other_users(self):
        """Copies the module, helper, tool and driver into a world-readable directory of
        this test, so that a test running as another user does not depend on the
        permissions of the directories above the checkout (a clone under a 0700 home)."""
        stage = os.path.join(self.tmp, "stage")
        os.mkdir(stage)
        os.chmod(stage, 0o755)
        copies = {}
        for src in (MODULE, HELPER, DRIVER, os.path.join(BUILD, "k8stoken")):
            dst = os.path.join(stage, os.path.basename(src))
            shutil.copy2(src, dst)
            os.chmod(dst, 0o755)
            copies[src] = dst
        self.module, self.helper_bin, self.driver = copies[MODULE], copies[HELPER], copies[DRIVER]
        self.helper = self._helper_wrapper()
        self.write_service()

    def write_conf(self, servers=None, audiences=(AUDIENCE,), rules=None, extra="",
                   ca_file=None, credential=None, cache_ttl=0, negative_cache_ttl=0,
                   cache_dir=None, timeout=TIMEOUT, connect_timeout=CONNECT_TIMEOUT,
                   local_verify="no"):
        """Writes the test config; the cache is off unless cache_ttl is given. Local
        verification is off (local_verify = no) so that the TokenReview path is what these
        tests exercise; tests/module/test_local_verify.py passes local_verify=None (the
        product's default, auto) or "yes"."""
        self.cache_dir = cache_dir or os.path.join(self.tmp, "cache")
        servers = servers or [self.api.url]
        self.servers = list(servers)
        rules = rules if rules is not None else [
            "map serviceaccount:pam/pam-user alice",
            "map serviceaccount:team-*/* {name}",
            "map group:system:serviceaccounts:ops deploy",
            "deny serviceaccount:kube-system/*",
        ]
        lines = [f"server = {s}" for s in servers]
        lines.append(f"ca_file = {ca_file or self.api.ca_file}")
        lines.append(credential or f"reviewer_token_file = {self.reviewer_file}")
        lines += [f"audience = {a}" for a in audiences]
        lines += [f"connect_timeout = {connect_timeout}", f"timeout = {timeout}",
                  f"cache_dir = {self.cache_dir}",
                  f"cache_ttl = {cache_ttl}", f"negative_cache_ttl = {negative_cache_ttl}"]
        if local_verify is not None:
            lines.append(f"local_verify = {local_verify}")
        lines += [l for l in extra.splitlines() if l.strip()]
        lines += rules
        self._write_private(self.conf, "\n".join(lines) + "\n", 0o644)

    def module_line(self, helper=None):
        helper = "" if "helper=" in self.args else f" helper={helper or self.helper}"
        return f"{self.module} conf={self.conf}{helper} {self.args}".rstrip()

    def write_service(self, args=None, stack=None):
        if args is not None:
            self.args = args
        line = self.module_line()
        stack = stack or [f"auth required {line}", f"account required {line}"]
        with open(os.path.join(self.confdir, SERVICE), "w") as f:
            f.write("\n".join(stack) + "\n")
        if VALGRIND:
            stack = [l.replace(line, self.module_line(self.helper_bin)) for l in stack]
        with open(os.path.join(self.confdir, LOAD_SERVICE), "w") as f:
            f.write("\n".join(stack) + "\n")
        with open(os.path.join(self.confdir, "other"), "w") as f:
            f.write("auth required pam_deny.so\naccount required pam_deny.so\n")

    def end_backoff(self):
        """As if every server's circuit-breaker backoff had ended and the probe passed: removes
        the breaker's state files (docs/design.md §6.4). For tests that make a server fail
        once and then need it asked again at once."""
        if os.path.isdir(self.cache_dir):
            for name in os.listdir(self.cache_dir):
                if name.startswith("b-"):
                    os.unlink(os.path.join(self.cache_dir, name))

    def ensure_sa(self, ns, name):
        try:
            self.api.create_sa(ns, name)
        except ktest.ApiError as e:
            if e.status != 409:
                raise

    def token(self, ns="pam", name="pam-user", audiences=(AUDIENCE,), seconds=600, bound=None):
        self.ensure_sa(ns, name)
        tok = self.api.token_request(ns, name, list(audiences), seconds, bound=bound)
        self.secrets.append(tok)
        return tok

    def mint(self, **kw):
        tok = self.api.mint(**kw)
        self.secrets.append(tok)
        return tok

    def driver_env(self, extra_env=None):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "NSS_WRAPPER_PASSWD": self.passwd,
            "NSS_WRAPPER_GROUP": self.group,
            "KT_TEST_SYSLOG": os.path.join(self.tmp, "syslog"),
        }
        preload = ["libnss_wrapper.so"]
        if SANITIZER:
            preload.insert(0, sanitizer_preload())
            env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1"
            env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        env["LD_PRELOAD"] = " ".join(preload)
        env.update(extra_env or {})
        return env

    def run(self, user, answers=None, rhost=None, acct=False, sigchld=None, extra_env=None,
            timeout=60, prefix=None, set_user=None, conv_fail=None):
        """Runs one pam_authenticate for user with the given conversation answers.
        prefix: a command to run the driver under (e.g. setpriv; call
        stage_for_other_users() first); the answers file is then readable by all and the
        log goes wherever extra_env's KT_TEST_SYSLOG says. set_user: PAM_USER is changed
        to it before pam_acct_mgmt; conv_fail: the driver's --conv-fail."""
        if isinstance(answers, str):
            answers = [answers]
        env = self.driver_env(extra_env)
        log_path = env["KT_TEST_SYSLOG"]
        if os.path.exists(log_path):
            os.unlink(log_path)
        cmd = [self.driver, "--confdir", self.confdir, "--service", SERVICE]
        if user is not None:
            cmd += ["--user", user]
        if answers is not None:
            path = os.path.join(self.tmp, "answers")
            self._write_private(path, "".join(a + "\0" for a in answers),
                                0o644 if prefix else 0o600)
            cmd += ["--answers", path]
        if rhost:
            cmd += ["--rhost", rhost]
        if acct:
            cmd.append("--acct")
        if sigchld:
            cmd += ["--sigchld", sigchld]
        if set_user is not None:
            cmd += ["--set-user", set_user]
        if conv_fail is not None:
            cmd += ["--conv-fail", conv_fail]
        if VALGRIND:
            cmd = VALGRIND_CMD + cmd
        cmd = list(prefix or []) + cmd
        start = time.monotonic()
        proc = subprocess.run(cmd, env=env, capture_output=True,
                              text=True, errors="replace", timeout=timeout)
        elapsed = time.monotonic() - start
        log_text = open(log_path, errors="replace").read() if os.path.exists(log_path) else ""
        result = Result(proc, log_text, elapsed)
        self.captured += [proc.stdout, proc.stderr, log_text]
        assert proc.returncode == 0, f"driver failed (valgrind/sanitizer?): {result!r}"
        assert result.code is not None, result
        if user is not None and result.user is not None and set_user is None:
            assert result.user == escaped(user), "PAM_USER changed"  # D09: never changed
        return result

    def spawn(self, user, tokens, tag, extra_env=None):
        """Starts one driver that runs len(tokens) transactions for user, the i-th answering
        tokens[i] (--answers-each), with a log of its own; finish it with collect()."""
        path = os.path.join(self.tmp, f"answers-{tag}")
        self._write_private(path, "".join(t + "\0" for t in tokens))
        log_path = os.path.join(self.tmp, f"syslog-{tag}")
        env = self.driver_env(dict(extra_env or {}, KT_TEST_SYSLOG=log_path))
        cmd = [self.driver, "--confdir", self.confdir, "--service", LOAD_SERVICE, "--user", user,
               "--answers-each", path, "--repeat", str(len(tokens))]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, errors="replace")
        proc.kt_log_path = log_path
        return proc

    def collect(self, proc, timeout=120):
        """Waits for a spawn()ed driver: (exit status, [PAM result names], [decision dicts])."""
        out, err = proc.communicate(timeout=timeout)
        log_text = (open(proc.kt_log_path, errors="replace").read()
                    if os.path.exists(proc.kt_log_path) else "")
        self.captured += [out, err, log_text]
        codes = [PAM_RESULTS.get(int(l.split()[1]), l) for l in out.splitlines()
                 if l.startswith("authenticate ")]
        fake = subprocess.CompletedProcess([], proc.returncode, "", "")
        decisions = []
        for line in log_text.splitlines():
            r = Result(fake, line, 0)
            d = r.decision()
            if d is not None:
                decisions.append(d)
        return proc.returncode, codes, decisions

    def scan_for_secrets(self):
        """L01: no 16-character piece of any token or credential in anything captured."""
        for name in ("server.log", "stderr.log"):
            path = os.path.join(self.api.state_dir, name)
            if os.path.exists(path):
                self.captured.append(open(path, errors="replace").read())
        haystack = "\n".join(self.captured)
        pieces = set()
        for secret in self.secrets:
            if len(secret) < 16:
                assert secret not in haystack, f"a secret leaked: ...{secret[:4]}..."
            for i in range(0, len(secret) - 15):
                pieces.add(secret[i:i + 16])
        # one pass over the haystack's 16-character windows (fast with many tokens)
        for j in range(0, len(haystack) - 15):
            piece = haystack[j:j + 16]
            assert piece not in pieces, f"a piece of a secret leaked: ...{piece[:4]}..."
