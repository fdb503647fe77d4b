"""A real OpenSSH server for end-to-end tests of pam_k8stoken.

Sshd(...).start() runs /usr/sbin/sshd as root on 127.0.0.1 (a random free port) with its own
sshd_config, host key and log, `UsePAM yes`, and PAM through pam_wrapper: the service file lives
in a private directory and is named after sshd's program name, which is the name of a symlink
<tmp>/sshd-k8stoken -> /usr/sbin/sshd (sshd uses `__progname` as its PAM service; it must also be
started by an absolute path, because it re-executes itself). Users come from nss_wrapper files:
the privilege separation user `sshd` (without it sshd exits), root, and alice/bob (uid >= 1000,
home directories inside the temporary directory). /etc/pam.d and /etc/passwd are not touched.

Logs (measured with OpenSSH 9.2p1 and pam_wrapper 1.1.4):
  * sshd.log    sshd's own log (-E), LogLevel VERBOSE;
  * stderr.log  sshd's stderr (-e keeps it open in the per-connection processes): pam_wrapper's
                debug output, and without the shim pam_wrapper's pam_syslog() renders the
                module's messages here as "PWRAP_DEBUG[...] - SYSLOG(6): MSG" -- but only where
                the environment still holds PAM_WRAPPER_DEBUGLEVEL: for keyboard-interactive
                sshd runs PAM in a forked child that empties its environment (auth-pam.c
                sshpam_thread: environ[0] = NULL), and there everything below LOG_ERR is lost;
  * syslog.log  with the shim (syslog_shim.c, preloaded first, built by build_shim()): every
                pam_syslog()/syslog() call of the module and libpam, both methods, as
                "syslog PRIORITY [PID] MESSAGE".

Client side: run_ssh() runs the real OpenSSH client with SSH_ASKPASS; pty_ssh() drives it
through a pseudo-terminal like a person pasting the token by hand.
"""
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time



def multiarch():
    """The Debian multiarch triplet (x86_64-linux-gnu, aarch64-linux-gnu, ...): libpam's module
    directory and the wrappers' libraries live under /usr/lib/<triplet>."""
    for argv in (["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], ["gcc", "-print-multiarch"]):
        try:
            out = subprocess.run(argv, capture_output=True, text=True).stdout.strip()
        except OSError:
            continue
        if out:
            return out
    raise RuntimeError("cannot tell the multiarch triplet: neither dpkg-architecture nor "
                       "gcc -print-multiarch answered (apt-get install dpkg-dev gcc)")


SSHD = "/usr/sbin/sshd"
SSH = "/usr/bin/ssh"
SERVICE = "sshd-k8stoken"
MULTIARCH = multiarch()
PAMDIR = f"/usr/lib/{MULTIARCH}/security"
PRIVSEP_DIR = "/run/sshd"  # compiled into Debian's sshd; must exist, root-owned, not writable by others

# name, uid; `sshd` is the privilege separation user and must be in the passwd file
USERS = [("root", 0, "/root"), ("sshd", 101, PRIVSEP_DIR), ("nobody", 65534, "/nonexistent"),
         ("alice", 1001, None), ("bob", 1002, None), ("deploy", 1003, None)]


PROFILE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "debian", "pam-configs", "k8stoken")
UNIX_PROFILE = "/usr/share/pam-configs/unix"


def _profile_auth(path, initial):
    """(priority, [(control, module, args)]) of a pam-auth-update profile's Auth[-Initial]."""
    fields, key = {}, None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line[:1] in (" ", "\t") and key:
                fields[key].append(line.strip())
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = [value.strip()] if value.strip() else []
    lines = fields.get("Auth-Initial" if initial and "Auth-Initial" in fields else "Auth", [])
    out = []
    for line in lines:
        m = re.match(r"^(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)$", line)
        out.append(m.groups())
    return int(fields["Priority"][0]), out


def profile_auth_stack(module_line):
    """common-auth as `pam-auth-update --enable k8stoken` writes it next to Debian's unix
    profile (tests/deb/run.py checks the real one): the profiles by priority, the first with its
    Auth-Initial lines, each "success=end" turned into a jump to pam_permit, then pam_deny and
    pam_permit. pam_k8stoken.so is replaced by module_line (the build's module with conf= and
    helper=), other modules get absolute paths."""
    profiles = sorted([_profile_auth(UNIX_PROFILE, True), _profile_auth(PROFILE, False)],
                      reverse=True)
    primary = [line for _, lines in profiles for line in lines]
    stack = []
    for i, (control, module, args) in enumerate(primary):
        control = control.replace("success=end", f"success={len(primary) - i}")
        if module == "pam_k8stoken.so":
            module = module_line
        elif not module.startswith("/"):
            module = f"{PAMDIR}/{module}"
        stack.append(f"auth {control} {module} {args}".rstrip())
    return stack + [f"auth requisite {PAMDIR}/pam_deny.so", f"auth required {PAMDIR}/pam_permit.so"]


def build_shim(directory):
    """Compiles syslog_shim.c into directory; returns its path (None when gcc is missing)."""
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "syslog_shim.c")
    out = os.path.join(directory, "kt_syslog_shim.so")
    if shutil.which("gcc") is None:
        return None
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", out, source], check=True,
                   capture_output=True)
    return out


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lib(name):
    for d in (f"/usr/lib/{MULTIARCH}", "/usr/lib", f"/lib/{MULTIARCH}"):
        path = os.path.join(d, name)
        if os.path.exists(path):
            return path
    raise RuntimeError(f"{name} not found: apt-get install libpam-wrapper libnss-wrapper")


class Sshd:
    """One sshd process and its world. module_line: the PAM module path and arguments
    (e.g. "/work/main/build/pam_k8stoken.so conf=... helper=...")."""

    def __init__(self, module_line, tmp=None, password_auth=True, kbdint_auth=True,
                 authentication_methods=None, permit_root_login="prohibit-password",
                 extra_config="", stack=None, pam_debuglevel=2, users=None, shim=None,
                 extra_env=None, preload_first=()):
        self.module_line = module_line
        self.own_tmp = tmp is None
        self.tmp = tmp or tempfile.mkdtemp(prefix="kt-sshd-")
        os.makedirs(self.tmp, exist_ok=True)
        os.chmod(self.tmp, 0o755)  # users must reach their homes below it
        self.password_auth = password_auth
        self.kbdint_auth = kbdint_auth
        self.authentication_methods = authentication_methods
        self.permit_root_login = permit_root_login
        self.extra_config = extra_config
        self.stack = stack
        self.pam_debuglevel = pam_debuglevel
        self.users = users or USERS
        self.shim = shim
        self.extra_env = dict(extra_env or {})  # e.g. a hostile environment (docs/security.md E02)
        self.preload_first = list(preload_first)  # e.g. libasan.so for a SANITIZE=1 module
        self.syslog_path = os.path.join(self.tmp, "syslog.log")
        self.process = None
        self.port = None
        self.log_path = os.path.join(self.tmp, "sshd.log")
        self.stderr_path = os.path.join(self.tmp, "stderr.log")
        self.pamdir = os.path.join(self.tmp, "pam.d")
        self.binary = os.path.join(self.tmp, SERVICE)
        self.config_path = os.path.join(self.tmp, "sshd_config")
        self.passwd = os.path.join(self.tmp, "passwd")
        self.group = os.path.join(self.tmp, "group")
        self.homes = {}

    # --- the world --------------------------------------------------------------------------

    def _write(self, path, text, mode=0o644):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def _users(self):
        lines, groups = [], []
        for name, uid, home in self.users:
            if home is None:
                home = os.path.join(self.tmp, "home", name)
                os.makedirs(home, exist_ok=True)
                os.chown(home, uid, uid)
                os.chmod(home, 0o755)
            self.homes[name] = home
            lines.append(f"{name}:x:{uid}:{uid}:{name}:{home}:/bin/sh\n")
            groups.append(f"{name}:x:{uid}:\n")
        os.makedirs(os.path.join(self.tmp, "home"), exist_ok=True)
        self._write(self.passwd, "".join(lines))
        self._write(self.group, "".join(groups))

    def write_service(self, module_line=None, stack=None):
        """The PAM service file sshd-k8stoken (module by absolute path); may be rewritten while
        sshd runs: every connection reads it anew."""
        if module_line is not None:
            self.module_line = module_line
        if stack is not None:
            self.stack = stack
        os.makedirs(self.pamdir, exist_ok=True)
        stack = self.stack or [
            f"auth required {self.module_line}",
            f"account required {self.module_line}",
            f"password required {PAMDIR}/pam_deny.so",
            f"session required {PAMDIR}/pam_permit.so",
        ]
        self._write(os.path.join(self.pamdir, SERVICE), "\n".join(stack) + "\n")
        self._write(os.path.join(self.pamdir, "other"),
                    "".join(f"{t} required {PAMDIR}/pam_deny.so\n"
                            for t in ("auth", "account", "password", "session")))

    def _config(self):
        yes = {True: "yes", False: "no"}
        lines = [
            "ListenAddress 127.0.0.1",
            f"Port {self.port}",
            f"HostKey {self.tmp}/ssh_host_ed25519_key",
            "UsePAM yes",
            f"KbdInteractiveAuthentication {yes[self.kbdint_auth]}",
            f"PasswordAuthentication {yes[self.password_auth]}",
            "PubkeyAuthentication no",
            "HostbasedAuthentication no",
            "GSSAPIAuthentication no",
            "KerberosAuthentication no",
            f"PermitRootLogin {self.permit_root_login}",
            "LogLevel VERBOSE",
            f"PidFile {self.tmp}/sshd.pid",
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "PermitUserEnvironment no",
            "MaxStartups 100:30:200",
            "LoginGraceTime 60",
            "AuthorizedKeysFile none",
            "Subsystem sftp internal-sftp",
        ]
        if self.authentication_methods:
            lines.append(f"AuthenticationMethods {self.authentication_methods}")
        lines += [l for l in self.extra_config.splitlines() if l.strip()]
        return "\n".join(lines) + "\n"

    def env(self):
        preload = [_lib("libpam_wrapper.so"), _lib("libnss_wrapper.so")]
        if self.shim:
            preload.insert(0, self.shim)
        preload = self.preload_first + preload
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "LD_PRELOAD": " ".join(preload),
            "KT_E2E_SYSLOG": self.syslog_path,
            "PAM_WRAPPER": "1",
            "PAM_WRAPPER_SERVICE_DIR": self.pamdir,
            "PAM_WRAPPER_DEBUGLEVEL": str(self.pam_debuglevel),
            "NSS_WRAPPER_PASSWD": self.passwd,
            "NSS_WRAPPER_GROUP": self.group,
            **self.extra_env,
        }

    # --- process ----------------------------------------------------------------------------

    def start(self, timeout=15):
        if not os.path.isdir(PRIVSEP_DIR):
            os.makedirs(PRIVSEP_DIR, 0o755, exist_ok=True)
        self._users()
        self.write_service()
        key = os.path.join(self.tmp, "ssh_host_ed25519_key")
        if not os.path.exists(key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key],
                           check=True, stdin=subprocess.DEVNULL, capture_output=True)
        if not os.path.lexists(self.binary):
            os.symlink(SSHD, self.binary)
        for _ in range(10):  # a random port can be taken in between: retry with another
            self.port = free_port()
            self._write(self.config_path, self._config())
            check = subprocess.run([self.binary, "-t", "-f", self.config_path], env=self.env(),
                                   capture_output=True, text=True)
            if check.returncode != 0:
                raise RuntimeError(f"sshd -t refused the config: {check.stderr}")
            start_offset = self._log_size()
            with open(self.stderr_path, "ab") as err:
                self.process = subprocess.Popen(
                    [self.binary, "-D", "-e", "-E", self.log_path, "-f", self.config_path],
                    env=self.env(), stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                    start_new_session=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                text = self.log(start_offset)
                if f"Server listening on 127.0.0.1 port {self.port}" in text:
                    return self
                if self.process.poll() is not None:
                    break
                time.sleep(0.02)
            self.stop()
            if "Address already in use" not in self.log(start_offset):
                raise RuntimeError(f"sshd did not start: {self.log(start_offset)}"
                                   f"{open(self.stderr_path, errors='replace').read()}")
        raise RuntimeError("sshd: no free port")

    def stop(self, timeout=10):
        """SIGTERM to the listener; the connection processes are its children in its own
        session (process group), they get SIGTERM too. Returns the listener's exit status."""
        if self.process is None:
            return None
        proc, self.process = self.process, None
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return proc.returncode

    @staticmethod
    def remove_stale_pam_dirs():
        """pam_wrapper leaves a /tmp/pam.X behind per sshd process (62 slots in all): remove
        those that hold this harness's service file and whose owning process is gone."""
        for name in os.listdir("/tmp"):
            d = os.path.join("/tmp", name)
            if not (name.startswith("pam.") and len(name) == 5):
                continue
            if not os.path.exists(os.path.join(d, SERVICE)):
                continue
            try:
                with open(os.path.join(d, "pid")) as f:
                    pid = int(f.read().strip())
                os.kill(pid, 0)
                continue  # still in use
            except ProcessLookupError:
                pass
            except (OSError, ValueError):
                continue  # no pid yet: being set up
            shutil.rmtree(d, ignore_errors=True)

    def cleanup(self):
        self.stop()
        self.remove_stale_pam_dirs()
        if self.own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self if self.process else self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # --- logs -------------------------------------------------------------------------------

    def _log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    @staticmethod
    def _read(path, offset=0):
        try:
            with open(path, errors="replace") as f:
                f.seek(offset)
                return f.read()
        except OSError:
            return ""

    def log(self, offset=0):
        return self._read(self.log_path, offset)

    def stderr(self, offset=0):
        return self._read(self.stderr_path, offset)

    def syslog(self, offset=0):
        return self._read(self.syslog_path, offset)

    def mark(self):
        """Offsets of the three logs now, for logs_since()."""
        sizes = []
        for path in (self.log_path, self.stderr_path, self.syslog_path):
            try:
                sizes.append(os.path.getsize(path))
            except OSError:
                sizes.append(0)
        return tuple(sizes)

    def logs_since(self, mark):
        """(sshd log, stderr, syslog) text written since mark()."""
        return self.log(mark[0]), self.stderr(mark[1]), self.syslog(mark[2])

    @staticmethod
    def module_lines(text):
        """The messages in syslog.log (shim) or stderr.log (pam_wrapper) text, without prefix."""
        out = []
        for line in text.splitlines():
            m = (re.match(r"syslog \d+ \[\d+\] (.*)$", line)
                 or re.search(r"PWRAP_\w+\[[^\]]*\] - SYSLOG\(\d+\): (.*)$", line))
            if m:
                out.append(m.group(1))
        return out

    @staticmethod
    def decisions(text):
        """The module's decision lines ("allow ..."/"deny ...") as dicts of their fields."""
        out = []
        for line in Sshd.module_lines(text):
            if line.startswith(("allow ", "deny ")):
                fields = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line))
                fields["verdict"] = line.split()[0]
                out.append(fields)
        return out

    # --- clients ----------------------------------------------------------------------------

    def ssh_argv(self, user, command, method="keyboard-interactive", options=()):
        argv = [SSH, "-F", "/dev/null", "-p", str(self.port),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=no", "-o", f"PreferredAuthentications={method}",
                "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
                "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]
        for o in options:
            argv += ["-o", o]
        argv.append(f"{user}@127.0.0.1")
        if command is not None:
            argv.append(command)
        return argv

    def run_ssh(self, user, command="echo K8S=$K8S_SERVICEACCOUNT", askpass=None, env=None,
                method="keyboard-interactive", options=(), timeout=60):
        """The OpenSSH client with SSH_ASKPASS=askpass (forced; stdin is /dev/null, no tty).
        env: extra environment (e.g. K8STOKEN_FILE). Returns a CompletedProcess."""
        e = {"PATH": "/usr/bin:/bin", "HOME": self.tmp, "LANG": "C"}
        if askpass:
            e.update({"SSH_ASKPASS": askpass, "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"})
        e.update(env or {})
        return subprocess.run(self.ssh_argv(user, command, method, options), env=e,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=timeout, start_new_session=True)

    def pty_ssh(self, user, answers, command="echo K8S=$K8S_SERVICEACCOUNT",
                method="keyboard-interactive", options=(), timeout=60):
        """The OpenSSH client on a pseudo-terminal, no askpass: answers is a list of
        (prompt regex, text); each text is typed (in one write, then "\\r") once its
        prompt appears. Returns (exit status, everything the terminal showed, prompts seen)."""
        argv = self.ssh_argv(user, command, method, options)
        env = {"PATH": "/usr/bin:/bin", "HOME": self.tmp, "LANG": "C", "TERM": "dumb"}
        pid, fd = pty.fork()
        if pid == 0:  # child: the pty is its controlling terminal
            try:
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        output, seen, pending = b"", [], list(answers)
        consumed = 0
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                r, _, _ = select.select([fd], [], [], 0.2)
                if r:
                    try:
                        chunk = os.read(fd, 65536)
                    except OSError:  # EIO: the child closed the terminal
                        break
                    if not chunk:
                        break
                    output += chunk
                while pending:
                    text = output[consumed:].decode(errors="replace")
                    m = re.search(pending[0][0], text)
                    if not m:
                        break
                    seen.append(m.group(0))
                    consumed += len(text[:m.end()].encode())
                    _, answer = pending.pop(0)
                    os.write(fd, answer.encode() + b"\r")
            else:
                os.kill(pid, signal.SIGKILL)
        finally:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        return code, output.decode(errors="replace"), seen
