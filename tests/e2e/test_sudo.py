"""End-to-end tests: real sudo (setuid root) gated by pam_k8stoken (docs/security.md E02, H05, H06).

sudo is setuid, so a preload (pam_wrapper) does not reach it: these tests put the module into
sudo's REAL service file /etc/pam.d/sudo for the time of this module, with a real local user, a
sudoers drop-in and a configuration file under /etc/security, all with random names, and put
everything back afterwards (also when a test or the set-up fails). A crashed earlier run is
repaired first: its backup of /etc/pam.d/sudo is restored and its leftovers removed. A lock file
keeps two runs of this module from overlapping.

The token goes through `sudo -A` and the real askpass (k8stoken-askpass: $KT_ASKPASS, else
BUILD/k8stoken-askpass; required) in parts of at most 500 characters (sudo 1.9.13 refuses
answers of 512 or more); a wrapper in front of it records the prompts sudo passes it.

The module's log: sudo is setuid, so no preload reaches it, and it logs through /dev/log. Every
sudo runs in a private mount namespace in which this module's own socket is bind-mounted over
/dev/log, so the decision lines are caught whether or not the machine runs a syslog daemon or
journald (then nothing reaches the machine's log; where /dev/log does not exist, an empty
regular file stands in as the mount point for the time of the tests). Every test asserts the
exact decisions, and the secret scan reads them.

Must run as root (as CI does); a missing sudo or askpass is a failure.
"""
import fcntl
import grp
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time

import pytest

import ktest
from listeners import CountingListener

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BUILD = os.path.join(ROOT, os.environ.get("KT_BUILD", "build"))
MODULE = os.path.join(BUILD, "pam_k8stoken.so")
HELPER = os.path.join(BUILD, "k8stoken-review")
SUDO = "/usr/bin/sudo"
PAM_SUDO = "/etc/pam.d/sudo"
BACKUP = "/etc/pam.d/.sudo.k8stoken-e2e.orig"   # a dot file: libpam never reads it as a service
LOCK = "/run/k8stoken-e2e-sudo.lock"
SUDOERS_D = "/etc/sudoers.d"
PREFIX = "k8stoken-e2e-"                        # sudoers drop-in and /etc/security files
USER_PREFIX = "k8se2e"
AUDIENCE = "sudo://e2e"
TR = "/apis/authentication.k8s.io/v1/tokenreviews"
PART = 500
FIRST_PROMPT = "Kubernetes token: "
LOGS = ("/var/log/auth.log", "/var/log/syslog", "/var/log/secure", "/var/log/messages")
# realistic names make pod-bound tokens about as long as real ones
NODE = "ip-10-0-12-34.eu-west-1.compute.internal"
POD = "web-frontend-7c79c4bf97-5x2kq"

ASKPASS = os.environ.get("KT_ASKPASS") or os.path.join(BUILD, "k8stoken-askpass")

# Records the prompt text sudo passes (argv[1], never a secret), then runs the real askpass.
WRAPPER = r"""#!/bin/sh
if [ -n "${KT_PROMPT_LOG:-}" ]; then
	printf '%s\n' "${1:-}" >> "$KT_PROMPT_LOG"
fi
exec @ASKPASS@ "$@"
"""


def run(argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    return subprocess.run(argv, **kw)


def write_file(path, text, mode, uid=0, gid=0):
    """Atomically: a temporary file in the same directory, then rename."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".kt-e2e-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
        os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def restore_pam_sudo():
    """Puts the backup back, byte for byte and with its mode, and removes it."""
    with open(BACKUP, "rb") as f:
        original = f.read()
    st = os.stat(BACKUP)
    write_file(PAM_SUDO, original, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    with open(PAM_SUDO, "rb") as f:
        assert f.read() == original, "/etc/pam.d/sudo was not restored"
    os.unlink(BACKUP)


def remove_user(name):
    run(["userdel", "-r", "-f", name])
    if os.path.exists(f"/run/sudo/ts/{name}"):
        os.unlink(f"/run/sudo/ts/{name}")


def repair_crashed_run():
    """Undo what a killed earlier run of this module left behind (we hold the lock)."""
    if os.path.exists(BACKUP):
        restore_pam_sudo()
    for name in os.listdir(SUDOERS_D):
        if name.startswith(PREFIX):
            os.unlink(os.path.join(SUDOERS_D, name))
    for name in os.listdir("/etc/security"):
        if name.startswith("pam_" + PREFIX):
            os.unlink(os.path.join("/etc/security", name))
    for entry in pwd.getpwall():
        if re.fullmatch(USER_PREFIX + r"[0-9a-f]{6}", entry.pw_name):
            remove_user(entry.pw_name)
    SyslogCatcher.remove_dead()
    # its API servers (state directories /tmp/kt-sudo-*/api-*) and its temporary directory
    tmpdir = tempfile.gettempdir()
    for name in os.listdir(tmpdir):
        top = os.path.join(tmpdir, name)
        if not name.startswith("kt-sudo-") or not os.path.isdir(top):
            continue
        for sub in os.listdir(top):
            state = os.path.join(top, sub)
            try:
                with open(os.path.join(state, "pid")) as f:
                    pid = int(f.read().strip())
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if state.encode() in f.read():
                        os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                pass
        shutil.rmtree(top, ignore_errors=True)


class SyslogCatcher:
    """This module's syslog socket: a datagram socket at a private path, bind-mounted over
    /dev/log in the mount namespace of every sudo (see the module docstring)."""

    DEV_LOG = "/dev/log"

    def __init__(self):
        self.lines = []
        self.sock = None
        self.path = None
        self.placeholder = False
        self.seen = threading.Condition()

    @classmethod
    def remove_dead(cls):
        """An empty regular file at /dev/log is a placeholder left by a killed run (no syslog
        daemon puts one there); a socket that nobody listens on, too."""
        try:
            st = os.lstat(cls.DEV_LOG)
        except FileNotFoundError:
            return
        if stat.S_ISREG(st.st_mode) and st.st_size == 0:
            os.unlink(cls.DEV_LOG)
            return
        if not stat.S_ISSOCK(st.st_mode):
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            try:
                s.connect(cls.DEV_LOG)
            except ConnectionRefusedError:
                os.unlink(cls.DEV_LOG)
            except OSError:
                pass

    def start(self, directory):
        self.path = os.path.join(directory, "log.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        if not os.path.lexists(self.DEV_LOG):
            fd = os.open(self.DEV_LOG, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.close(fd)
            self.placeholder = True
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            with self.seen:
                self.lines.append(data.decode(errors="replace"))
                self.seen.notify_all()

    def wrap(self, argv):
        """argv run in a private mount namespace with this socket at /dev/log."""
        return (["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                 'mount --bind "$0" /dev/log && exec "$@"', self.path] + list(argv))

    def sync(self, timeout=10):
        """Waits until everything sent before this call has been read (datagrams on one
        socket arrive in order): sends a marker and waits for it."""
        marker = "kt-e2e-sync-" + secrets.token_hex(4)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(marker.encode(), self.path)
        with self.seen:
            assert self.seen.wait_for(lambda: marker in self.lines, timeout), "syslog catcher"
            self.lines.remove(marker)

    def stop(self):
        if self.placeholder:
            st = os.lstat(self.DEV_LOG)
            if stat.S_ISREG(st.st_mode) and st.st_size == 0:
                os.unlink(self.DEV_LOG)
            self.placeholder = False
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def parse_decisions(lines):
    """The module's decision lines among syslog datagrams, as dicts of their fields."""
    out = []
    for line in lines:
        m = re.search(r"pam_k8stoken\(sudo:auth\): ((allow|deny) .*)$", line.rstrip("\n\0"))
        if m:
            fields = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', m.group(1)))
            fields["verdict"] = m.group(2)
            out.append(fields)
    return out


class World:
    """The user, config, sudoers drop-in and sudo PAM stack of this module's tests."""

    def __init__(self):
        self.tag = secrets.token_hex(3)
        self.tmp = None
        self.user = None
        self.uid = None
        self.home = None
        self.conf = f"/etc/security/pam_{PREFIX}{self.tag}.conf"
        self.ca_file = f"/etc/security/pam_{PREFIX}{self.tag}.ca.crt"
        self.reviewer_file = f"/etc/security/pam_{PREFIX}{self.tag}.token"
        self.sudoers = os.path.join(SUDOERS_D, PREFIX + self.tag)
        self.servers = {}
        self.api = None
        self.secrets = []
        self.captured = []
        self.syslog = SyslogCatcher()
        self.log_offsets = {}
        self.pam_changed = False
        self.lock_fd = None
        self.askpass = None
        self.last_decisions = []

    # --- set-up ----------------------------------------------------------------------------

    def lock(self):
        self.lock_fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + 300
        while True:
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{LOCK} held by another run for 5 minutes")
                time.sleep(0.5)

    def setup(self):
        if os.geteuid() != 0:
            pytest.fail("the sudo end-to-end tests must run as root (they edit /etc/pam.d/sudo)")
        assert os.path.exists(SUDO), f"{SUDO} missing (tests/install-deps.sh installs sudo)"
        for path in (MODULE, HELPER, ASKPASS):
            assert os.access(path, os.X_OK if path != MODULE else os.R_OK), \
                f"{path} missing: run make first"
        self.lock()
        repair_crashed_run()
        self.tmp = tempfile.mkdtemp(prefix="kt-sudo-")
        os.chmod(self.tmp, 0o755)          # the user runs the askpass from here
        self.syslog.start(self.tmp)
        for path in LOGS:
            if os.path.exists(path):
                self.log_offsets[path] = os.path.getsize(path)
        self._make_user()
        self._make_askpass()
        self._make_sudoers()
        # the config needs a server before the stack may point at it
        self.use(self.server("rs256-2048"))
        self._install_pam_stack()

    def _make_user(self):
        self.user = USER_PREFIX + self.tag
        while True:
            uid = random.randint(42000, 42999)
            try:
                pwd.getpwuid(uid)
                continue
            except KeyError:
                pass
            try:
                grp.getgrgid(uid)
                continue
            except KeyError:
                break
        p = run(["useradd", "-m", "-U", "-u", str(uid), "-s", "/bin/sh", self.user])
        assert p.returncode == 0, p.stderr
        entry = pwd.getpwnam(self.user)
        self.uid, self.gid, self.home = entry.pw_uid, entry.pw_gid, entry.pw_dir
        os.chmod(self.home, 0o700)

    def _make_askpass(self):
        # the test user runs the askpass: a copy in our world-readable directory, so that a
        # checkout under a private (0700) directory does not matter
        staged = os.path.join(self.tmp, "k8stoken-askpass")
        shutil.copy2(ASKPASS, staged)
        os.chmod(staged, 0o755)
        self.askpass = os.path.join(self.tmp, "askpass")
        with open(self.askpass, "w") as f:
            f.write(WRAPPER.replace("@ASKPASS@", staged))
        os.chmod(self.askpass, 0o755)

    def _make_sudoers(self):
        text = (f"# pam_k8stoken end-to-end test ({__file__}); removed after the run\n"
                f"Defaults:{self.user} !mail_badpass, !lecture, passwd_tries=3\n"
                f"{self.user} ALL=(root) /usr/bin/id, /bin/true, /usr/bin/touch\n")
        candidate = os.path.join(self.tmp, "sudoers")
        with open(candidate, "w") as f:
            f.write(text)
        os.chmod(candidate, 0o440)
        p = run(["visudo", "-cf", candidate])
        assert p.returncode == 0, p.stdout + p.stderr
        write_file(self.sudoers, text, 0o440)
        p = run(["visudo", "-c"])
        assert p.returncode == 0, p.stdout + p.stderr

    def module_line(self):
        return f"{MODULE} conf={self.conf} helper={HELPER}"

    def _install_pam_stack(self, auth=None):
        """/etc/pam.d/sudo with `auth` (default: the module alone, token only) in place of
        Debian's auth lines; the first call saves the original as BACKUP."""
        if not self.pam_changed:
            with open(PAM_SUDO, "rb") as f:
                original = f.read()
            st = os.stat(PAM_SUDO)
            # the backup first (same bytes, mode and owner), then the new file
            write_file(BACKUP, original, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
            self.pam_changed = True
        with open(BACKUP, "rb") as f:
            original = f.read()
        st = os.stat(BACKUP)
        kept = [line for line in original.decode().splitlines()
                if not re.match(r"\s*(#%PAM-1\.0|@include\s+common-auth\b|auth\s)", line)]
        auth = auth or [f"auth [success=done default=die] {self.module_line()}",
                        "auth requisite pam_deny.so"]
        stack = ["#%PAM-1.0",
                 f"# TEMPORARY: pam_k8stoken end-to-end test; the original is {BACKUP}"]
        write_file(PAM_SUDO, "\n".join(stack + auth + kept) + "\n", stat.S_IMODE(st.st_mode),
                   st.st_uid, st.st_gid)

    # --- API servers and config ----------------------------------------------------------

    def server(self, key):
        """The test API server signing with `key`, started on first use."""
        if key not in self.servers:
            api = ktest.ApiServer()
            api.start(os.path.join(self.tmp, "api-" + key), key=key)
            self.servers[key] = api
            self.secrets += [api.reviewer_token, api.admin_token]
            for name in ("pam-user", "other-user"):
                api.create_sa("pam", name)
            api.create_node(NODE)
            api.create_pod("pam", POD, "pam-user", node=NODE)
        return self.servers[key]

    def use(self, api, extra_rules=()):
        """Points the configuration at `api` (a fresh config file, CA and reviewer token)."""
        with open(api.ca_file) as f:
            write_file(self.ca_file, f.read(), 0o644)
        write_file(self.reviewer_file, api.reviewer_token, 0o600)
        lines = [f"server = {api.url}", f"ca_file = {self.ca_file}",
                 f"reviewer_token_file = {self.reviewer_file}", f"audience = {AUDIENCE}",
                 "connect_timeout = 2", "timeout = 5",
                 f"cache_dir = {os.path.join(self.tmp, 'cache')}",
                 "cache_ttl = 0", "negative_cache_ttl = 0",
                 f"map serviceaccount:pam/pam-user {self.user}"] + list(extra_rules)
        write_file(self.conf, "\n".join(lines) + "\n", 0o644)
        self.api = api
        api.reset_requests()

    def token(self, api, name="pam-user", bound=False, pad_to=None):
        if pad_to:
            base = api.mint(namespace="pam", name=name, audiences=[AUDIENCE])
            tok = api.mint(namespace="pam", name=name, audiences=[AUDIENCE],
                           claims_override={"zz": "p" * max(0, (pad_to - len(base)) * 3 // 4)})
        elif bound:
            tok = api.token_request("pam", name, [AUDIENCE], 3607,
                                    bound={"kind": "Pod", "apiVersion": "v1", "name": POD})
        else:
            tok = api.token_request("pam", name, [AUDIENCE], 600)
        self.secrets.append(tok)
        return tok

    def reviews(self):
        return self.api.requests()["counts"].get(TR, 0)

    # --- running sudo ----------------------------------------------------------------------

    def part_size(self, token):
        """500, or a little less if a part boundary of 500 would fall where the text so far
        looks like a complete RS256 token (signature of 342 or 512 characters): the module
        would stop asking there. The real askpass avoids that itself."""
        sig = token.rindex(".") + 1
        size = PART
        while any((k * size - sig) in (342, 512) for k in range(1, len(token) // size + 1)):
            size -= 1
        return size

    def sudo(self, token, argv, extra_env=None, part_size=None, shell=None):
        """Runs `sudo -k -A ARGV` (or the shell command `shell`) as the test user with the token
        in a 0600 file of the user's; returns (CompletedProcess, prompts passed to the askpass)."""
        token_file = os.path.join(self.home, ".k8stoken")
        write_file(token_file, token, 0o600, self.uid, self.gid)
        prompt_log = os.path.join(self.home, ".prompts")
        if os.path.exists(prompt_log):
            os.unlink(prompt_log)
        env = {"PATH": "/usr/bin:/bin", "HOME": self.home, "USER": self.user,
               "LOGNAME": self.user, "LANG": "C", "K8STOKEN_FILE": token_file,
               "SUDO_ASKPASS": self.askpass, "KT_PROMPT_LOG": prompt_log,
               "K8STOKEN_PART_SIZE": str(part_size or self.part_size(token))}
        env.update(extra_env or {})
        if shell is None:
            command = [SUDO, "-k", "-A"] + list(argv)
        else:
            command = ["/bin/sh", "-c", shell]
        cmd = (["runuser", "-u", self.user, "--", "env", "-i"]
               + [f"{k}={v}" for k, v in env.items()] + command)
        first = len(self.syslog.lines)
        p = run(self.syslog.wrap(cmd), stdin=subprocess.DEVNULL, timeout=120, cwd="/")
        self.syslog.sync()
        self.last_decisions = parse_decisions(self.syslog.lines[first:])
        self.captured += [p.stdout, p.stderr]
        prompts = []
        if os.path.exists(prompt_log):
            with open(prompt_log) as f:
                prompts = f.read().splitlines()
            self.captured.append("\n".join(prompts))
        os.unlink(token_file)
        return p, prompts

    def outcomes(self):
        """(verdict, reason, user, sa) of each decision of the last sudo() call."""
        return [(d["verdict"], d.get("reason"), d.get("user"), d.get("sa"))
                for d in self.last_decisions]

    # --- checks and clean-up ---------------------------------------------------------------

    def logs(self):
        text = list(self.syslog.lines)
        for path, offset in self.log_offsets.items():
            with open(path, errors="replace") as f:
                f.seek(offset)
                text.append(f.read())
        for api in self.servers.values():
            for name in ("server.log", "stderr.log"):
                path = os.path.join(api.state_dir, name)
                if os.path.exists(path):
                    with open(path, errors="replace") as f:
                        text.append(f.read())
        return text

    def scan_for_secrets(self):
        """No 16-character piece of any token or credential in sudo's output or any log."""
        haystack = "\n".join(self.captured + self.logs())
        pieces = set()
        for secret in self.secrets:
            for i in range(0, len(secret) - 15):
                pieces.add(secret[i:i + 16])
        for j in range(0, len(haystack) - 15):
            assert haystack[j:j + 16] not in pieces, "a piece of a token leaked"

    def teardown(self):
        errors = []

        def step(what, fn, *args):
            try:
                fn(*args)
            except Exception as e:  # keep going: everything else must still be undone
                errors.append(f"{what}: {e!r}")

        if self.pam_changed:
            step("restore /etc/pam.d/sudo", restore_pam_sudo)
        if os.path.exists(self.sudoers):
            step("remove sudoers drop-in", os.unlink, self.sudoers)
        if self.user and self.uid is not None:
            step("userdel", remove_user, self.user)
        for path in (self.conf, self.ca_file, self.reviewer_file):
            if os.path.exists(path):
                step("remove " + path, os.unlink, path)
        for api in self.servers.values():
            step("stop API server", api.stop)
        step("syslog catcher", self.syslog.stop)
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.lock_fd is not None:
            os.close(self.lock_fd)
        assert not errors, errors


@pytest.fixture(scope="module")
def world():
    w = World()
    # a SIGTERM (e.g. a test runner's timeout) must still restore /etc/pam.d/sudo
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_term)
    try:
        w.setup()
        yield w
    finally:
        try:
            w.teardown()
        finally:
            signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def w(world):
    world.captured = []
    world.use(world.server("rs256-2048"))
    yield world
    world.scan_for_secrets()


def expected_prompts(token, size):
    n = -(-len(token) // size)
    return [FIRST_PROMPT] + [f"Kubernetes token (part {k}): " for k in range(2, n + 1)]


# --- mapped tokens of every real size ---------------------------------------------------------

SIZES = [  # id, server key, kind, (shortest, longest) expected length
    ("es256", "es256", "plain", (550, 760)),
    ("rs2048-create-token", "rs256-2048", "plain", (850, 960)),
    ("rs2048-pod-bound", "rs256-2048", "bound", (1080, 1250)),
    ("rs4096-pod-bound", "rs256-4096", "bound", (1420, 1600)),
    ("padded-2100", "rs256-2048", "padded", (2050, 2200)),
]


@pytest.mark.parametrize("key,kind,span", [s[1:] for s in SIZES], ids=[s[0] for s in SIZES])
def test_mapped_token_runs_the_command(w, key, kind, span):
    api = w.server(key)
    w.use(api)
    token = w.token(api, bound=kind == "bound", pad_to=2100 if kind == "padded" else None)
    assert span[0] <= len(token) <= span[1], len(token)
    p, prompts = w.sudo(token, ["/usr/bin/id", "-u"])
    assert p.returncode == 0, (p.stdout, p.stderr, prompts)
    assert p.stdout == "0\n"
    assert "Sorry" not in p.stderr
    # sudo hands the module's own prompt text to the askpass, one call per part
    assert prompts == expected_prompts(token, w.part_size(token))
    assert w.reviews() == 1               # cache off: exactly one TokenReview per sudo
    assert w.outcomes() == [("allow", "ok", w.user, "pam/pam-user")], w.last_decisions


def test_other_serviceaccount_is_refused(w):
    token = w.token(w.api, name="other-user")
    marker = f"/tmp/k8se2e-marker-{secrets.token_hex(4)}"
    p, prompts = w.sudo(token, ["/usr/bin/touch", marker])
    try:
        assert p.returncode != 0
        assert "Sorry, try again." in p.stderr, p.stderr
        assert "incorrect password attempts" in p.stderr, p.stderr
        assert not os.path.exists(marker)
        # sudo tries passwd_tries=3 times, each a complete conversation and one review
        assert w.reviews() == 3
        assert prompts.count(FIRST_PROMPT) == 3
        assert w.outcomes() == [("deny", "not_mapped", w.user, "pam/other-user")] * 3, \
            w.last_decisions
    finally:
        if os.path.exists(marker):
            os.unlink(marker)


def test_answer_of_512_or_more_never_reaches_the_module(w):
    """sudo's own limit: a part of 1,023 characters is refused by sudo itself and no
    TokenReview is sent."""
    token = w.token(w.api, bound=True)
    p, prompts = w.sudo(token, ["/usr/bin/id", "-u"], part_size=1023)
    assert p.returncode != 0
    assert p.stdout == ""
    # with -A sudo 1.9.13 reports the over-long answer as a conversation error and stops;
    # with -S or a terminal it says "Sorry, try again" (docs/design.md §5)
    assert ("PAM authentication error: Conversation error" in p.stderr
            or "Sorry, try again." in p.stderr), p.stderr
    assert prompts == [FIRST_PROMPT]
    assert w.reviews() == 0
    assert w.outcomes() == [], w.last_decisions    # the module got no answer, decided nothing


def test_sudo_timestamp_behaves_as_usual(w):
    """Without -k the first sudo authenticates once and leaves a timestamp; the next sudo
    in the same session (same parent process, no tty) needs no token; sudo -K removes it."""
    token = w.token(w.api)
    shell = ("sudo -A /bin/true && echo first-ok; "
             "sudo -n /bin/true && echo second-ok; "
             "sudo -K; sudo -n /bin/true 2>/dev/null || echo third-refused")
    p, prompts = w.sudo(token, [], shell=shell)
    assert p.stdout.split() == ["first-ok", "second-ok", "third-refused"], (p.stdout, p.stderr)
    assert w.reviews() == 1
    assert prompts.count(FIRST_PROMPT) == 1
    assert w.outcomes() == [("allow", "ok", w.user, "pam/pam-user")], w.last_decisions


# --- hostile environment (docs/security.md E02) ------------------------------------------------------

@pytest.fixture(scope="module")
def proxy():
    counter = CountingListener()
    yield counter
    counter.close()


def hostile_env(w, proxy):
    garbage = os.path.join(w.home, "openssl.cnf")
    write_file(garbage, "[[[ this is not\x01 an openssl config\n.include /nonexistent\n"
               "openssl_conf = nowhere\n", 0o644, w.uid, w.gid)
    aliases = os.path.join(w.home, "hostaliases")
    write_file(aliases, "localhost evil.example\n", 0o644, w.uid, w.gid)
    url = f"http://127.0.0.1:{proxy.port}"
    return {
        "https_proxy": url, "HTTPS_PROXY": url, "http_proxy": url, "HTTP_PROXY": url,
        "ALL_PROXY": f"socks5h://127.0.0.1:{proxy.port}", "all_proxy": url,
        "NO_PROXY": "example.invalid", "no_proxy": "example.invalid",
        "SSLKEYLOGFILE": os.path.join(w.home, "keylog"),
        "CURL_CA_BUNDLE": "/dev/null", "SSL_CERT_FILE": "/dev/null",
        "SSL_CERT_DIR": "/nonexistent", "OPENSSL_CONF": garbage,
        "TZ": "Nowhere/Bogus", "LOCALDOMAIN": "evil.example",
        "RES_OPTIONS": "ndots:15 attempts:5 timeout:30", "HOSTALIASES": aliases,
        "XDG_CONFIG_HOME": os.path.join(w.home, "xdg"), "CURL_HOME": w.home,
    }


def test_hostile_env_reaches_the_proxy_without_the_module(w, proxy):
    """Control: the listener does count connections of a client that honours https_proxy."""
    assert os.path.exists("/usr/bin/curl"), "curl missing (tests/install-deps.sh installs it)"
    before = proxy.connections
    env = hostile_env(w, proxy)
    cmd = (["runuser", "-u", w.user, "--", "env", "-i", "PATH=/usr/bin:/bin", f"HOME={w.home}"]
           + [f"{k}={v}" for k, v in env.items() if k not in ("OPENSSL_CONF", "SSLKEYLOGFILE")]
           + ["curl", "-sk", "--max-time", "3", w.api.url + "/version"])
    run(cmd, cwd="/")
    assert proxy.connections > before


@pytest.mark.parametrize("who,allowed", [("pam-user", True), ("other-user", False)])
def test_hostile_environment_changes_nothing(w, proxy, who, allowed):
    env = hostile_env(w, proxy)
    keylog = env["SSLKEYLOGFILE"]
    if os.path.exists(keylog):
        os.unlink(keylog)
    before = proxy.connections
    token = w.token(w.api, name=who)
    p, prompts = w.sudo(token, ["/usr/bin/id", "-u"], extra_env=env)
    if allowed:
        assert p.returncode == 0, (p.stdout, p.stderr)
        assert p.stdout == "0\n"
        assert w.reviews() == 1
        assert w.outcomes() == [("allow", "ok", w.user, "pam/pam-user")], w.last_decisions
    else:
        assert p.returncode != 0
        assert p.stdout == ""
        assert "Sorry, try again." in p.stderr
        assert w.reviews() == 3
        assert w.outcomes() == [("deny", "not_mapped", w.user, "pam/other-user")] * 3, \
            w.last_decisions
    assert proxy.connections == before, "a proxy was contacted"
    assert not os.path.exists(keylog), "a TLS key log was written"


def test_pam_sudo_is_the_test_stack_while_running(world):
    """Sanity: the module line is first in auth, Debian's other lines are kept, and the
    backup is the file that will be put back."""
    with open(PAM_SUDO) as f:
        text = f.read()
    auth = [l for l in text.splitlines() if l.startswith("auth")]
    assert auth[0].startswith("auth [success=done default=die] " + MODULE)
    assert auth[1] == "auth requisite pam_deny.so"
    assert "@include common-auth" not in text
    with open(BACKUP) as f:
        original = f.read()
    for line in original.splitlines():
        if re.match(r"\s*(session|account|@include common-(account|session))", line):
            assert line in text


# --- the pam-auth-update profile's stack with k8stoken-askpass's password opt-in ---------------

SHORT_ISSUER = "https://k8s"      # short names and issuer: a token of at most 511 characters


@pytest.fixture(scope="module")
def profile(world):
    """/etc/pam.d/sudo with the auth lines of the pam-auth-update profile (pam_unix, then
    pam_k8stoken use_first_pass; tests/lib/sshd.py profile_auth_stack), back to the token-only
    stack afterwards (teardown restores the original byte for byte). The API server signs with
    ES256 under a short issuer, so that a minted token fits sudo's 511 characters."""
    import sshd as sshd_mod
    api = ktest.ApiServer()
    api.start(os.path.join(world.tmp, "api-short"), key="es256", issuer=SHORT_ISSUER)
    world.servers["es256-short"] = api
    world.secrets += [api.reviewer_token, api.admin_token]
    api.create_sa("ops", "db")
    world._install_pam_stack(sshd_mod.profile_auth_stack(world.module_line()))
    try:
        yield api
    finally:
        world._install_pam_stack()


@pytest.fixture
def pw(world, profile):
    world.captured = []
    world.use(profile, extra_rules=[f"map serviceaccount:ops/db {world.user}"])
    yield world
    world.scan_for_secrets()


def short_token(w, api):
    tok = api.mint(namespace="ops", name="db", audiences=[AUDIENCE], jti=False,
                   expiration_seconds=600)
    w.secrets.append(tok)
    return tok


OPT_IN = {"K8STOKEN_ANSWER_PASSWORD": "1"}


def test_profile_stack_token_that_fits_runs_the_command(pw, profile):
    """sudo replaces pam_unix's "Password: " by "[sudo] password for USER: "; the askpass
    answers it with the whole token (opt-in), pam_unix refuses it, pam_k8stoken takes the same
    answer (use_first_pass): the command runs."""
    token = short_token(pw, profile)
    assert len(token) <= 511, len(token)
    p, prompts = pw.sudo(token, ["/usr/bin/id", "-u"], extra_env=OPT_IN)
    assert p.returncode == 0, (p.stdout, p.stderr, prompts)
    assert p.stdout == "0\n"
    assert prompts == [f"[sudo] password for {pw.user}: "]
    assert pw.reviews() == 1
    assert pw.outcomes() == [("allow", "ok", pw.user, "ops/db")], pw.last_decisions


def test_profile_stack_token_too_long_is_refused_by_the_askpass(pw, profile):
    """A real token (TokenRequest, ES256: about 560 characters and more) does not fit sudo's
    511: the askpass says so and answers nothing; sudo gets no password, no TokenReview."""
    token = profile.token_request("ops", "db", [AUDIENCE], 600)
    pw.secrets.append(token)
    assert len(token) > 511, len(token)
    p, prompts = pw.sudo(token, ["/usr/bin/id", "-u"], extra_env=OPT_IN)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stdout == ""
    assert (f"k8stoken-askpass: the token has {len(token)} characters, but a password prompt "
            "of sudo passes at most 511 in its one answer; not answering.") in p.stderr, p.stderr
    assert "sudo: no password was provided" in p.stderr, p.stderr
    assert prompts == [f"[sudo] password for {pw.user}: "]
    assert pw.reviews() == 0
    assert pw.outcomes() == [], pw.last_decisions


def test_profile_stack_without_opt_in_is_refused(pw, profile):
    token = short_token(pw, profile)
    p, prompts = pw.sudo(token, ["/usr/bin/id", "-u"])
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stdout == ""
    assert ("k8stoken-askpass: not a \"Kubernetes token\" prompt; not answering it (a password "
            "prompt gets the token only with K8STOKEN_ANSWER_PASSWORD=1)") in p.stderr, p.stderr
    assert prompts == [f"[sudo] password for {pw.user}: "]
    assert pw.reviews() == 0
    assert pw.outcomes() == [], pw.last_decisions
