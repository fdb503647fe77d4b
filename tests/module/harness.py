"""The module tests' world: a private PAM service directory and config per test,
nss_wrapper users, and a runner for the real libpam driver (tests/tools/pam_driver.c)
against the test API server. Everything captured is kept so that a test can scan it
for any 16-character piece of the tokens used (SECURITY.md L01)."""
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "apiserver"))
import ktest  # noqa: E402

BUILD = os.path.join(ROOT, os.environ.get("KT_BUILD", "build"))
MODULE = os.path.join(BUILD, "pam_k8stoken.so")
HELPER = os.path.join(BUILD, "k8stoken-review")
DRIVER = os.path.join(BUILD, "tests", "pam_driver")
SERVICE = "k8stoken-test"
# Under valgrind every process start costs ~0.5 s: deadlines are then not measurable.
TIMED = os.environ.get("KT_VALGRIND") != "1"
AUDIENCE = "pam-test"

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

    def write_conf(self, servers=None, audiences=(AUDIENCE,), rules=None, extra="",
                   ca_file=None, credential=None, cache_ttl=0, negative_cache_ttl=0,
                   cache_dir=None):
        """Writes the test config; the cache is off unless cache_ttl is given."""
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
        lines += ["connect_timeout = 1", "timeout = 3", f"cache_dir = {self.cache_dir}",
                  f"cache_ttl = {cache_ttl}", f"negative_cache_ttl = {negative_cache_ttl}"]
        lines += [l for l in extra.splitlines() if l.strip()]
        lines += rules
        self._write_private(self.conf, "\n".join(lines) + "\n", 0o644)

    def module_line(self):
        helper = "" if "helper=" in self.args else f" helper={HELPER}"
        return f"{MODULE} conf={self.conf}{helper} {self.args}".rstrip()

    def write_service(self, args=None, stack=None):
        if args is not None:
            self.args = args
        line = self.module_line()
        stack = stack or [f"auth required {line}", f"account required {line}"]
        with open(os.path.join(self.confdir, SERVICE), "w") as f:
            f.write("\n".join(stack) + "\n")
        with open(os.path.join(self.confdir, "other"), "w") as f:
            f.write("auth required pam_deny.so\naccount required pam_deny.so\n")

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
        if os.environ.get("KT_SANITIZER") == "1":
            preload.insert(0, sanitizer_preload())
            env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1"
            env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        env["LD_PRELOAD"] = " ".join(preload)
        env.update(extra_env or {})
        return env

    def run(self, user, answers=None, rhost=None, acct=False, sigchld=None, extra_env=None,
            timeout=60, prefix=None):
        """Runs one pam_authenticate for user with the given conversation answers.
        prefix: a command to run the driver under (e.g. setpriv); the answers file is
        then readable by all and the log goes wherever extra_env's KT_TEST_SYSLOG says."""
        if isinstance(answers, str):
            answers = [answers]
        env = self.driver_env(extra_env)
        log_path = env["KT_TEST_SYSLOG"]
        if os.path.exists(log_path):
            os.unlink(log_path)
        cmd = [DRIVER, "--confdir", self.confdir, "--service", SERVICE]
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
        if os.environ.get("KT_VALGRIND") == "1":
            cmd = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "--track-fds=no"] + cmd
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
        if user is not None and result.user is not None:
            assert result.user == escaped(user), "PAM_USER changed"  # D09: never changed
        return result

    def spawn(self, user, tokens, tag, extra_env=None):
        """Starts one driver that runs len(tokens) transactions for user, the i-th answering
        tokens[i] (--answers-each), with a log of its own; finish it with collect()."""
        path = os.path.join(self.tmp, f"answers-{tag}")
        self._write_private(path, "".join(t + "\0" for t in tokens))
        log_path = os.path.join(self.tmp, f"syslog-{tag}")
        env = self.driver_env(dict(extra_env or {}, KT_TEST_SYSLOG=log_path))
        cmd = [DRIVER, "--confdir", self.confdir, "--service", SERVICE, "--user", user,
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
