"""Fixtures for the end-to-end sshd tests (test_sshd.py).

One "world" per signing key of the test API server (rs256-2048, es256, rs256-4096), started on
first use and kept for the session: the API server, a module Harness (config, reviewer token,
token minting; tests/lib/harness.py) and a real sshd whose PAM service uses the module from
the build tree. After every test every captured text -- sshd's log, its stderr, the module's
log (syslog shim), the API server's logs and all client output -- is scanned for any
16-character piece of any token or credential (docs/security.md L01).

Environment: KT_BUILD (as the module tests: build directory under the repository, or an
absolute path), KT_ASKPASS (the askpass helper; default BUILD/k8stoken-askpass).
"""
import os
import shutil
import subprocess
import tempfile

import pytest

from harness import BUILD, HELPER, MODULE, Harness, ktest, sanitizer_preload
import sshd as sshd_mod

TOKENREVIEWS = ktest.TOKENREVIEWS


def askpass_path():
    """The project's own askpass helper (built by `make`), or KT_ASKPASS."""
    return os.environ.get("KT_ASKPASS") or os.path.join(BUILD, "k8stoken-askpass")


def require_tools():
    """A missing program is a failure (tests/install-deps.sh installs them all); only a
    developer's unprivileged run skips, since sshd must run as root."""
    if os.geteuid() != 0:
        pytest.skip("the sshd tests run sshd as root")
    missing = [p for p in (sshd_mod.SSHD, sshd_mod.SSH, MODULE, HELPER, askpass_path(),
                           "/usr/bin/sshpass") if not os.path.exists(p)]
    if missing:
        pytest.fail(f"missing: {', '.join(missing)} (make; tests/install-deps.sh installs "
                    f"openssh-server openssh-client sshpass)")


class World:
    """Test API server (one signing key) + module config + a running sshd."""

    def __init__(self, key, tmp, shim, sshd_kw=None):
        self.key = key
        self.tmp = tmp
        self.api = ktest.ApiServer().start(os.path.join(tmp, "api"), key=key)
        self.h = Harness(self.api, tmp)
        kw = dict(sshd_kw or {})
        if os.environ.get("KT_SANITIZER") == "1":  # a SANITIZE=1 build: ASan must come first
            kw["preload_first"] = [sanitizer_preload()]
            kw["extra_env"] = dict(kw.get("extra_env") or {}, ASAN_OPTIONS=(
                "detect_leaks=0:abort_on_error=1:log_path=" + os.path.join(tmp, "asan")))
        self.sshd = sshd_mod.Sshd(self.h.module_line(), tmp=os.path.join(tmp, "sshd"),
                                  shim=shim, **kw)
        self.sshd.start()
        self.n_files = 0
        self.mark = self.sshd.mark()

    def stop(self):
        self.sshd.cleanup()
        self.api.stop()

    # --- tokens -----------------------------------------------------------------------------

    def token_file(self, token):
        """A private file holding token (what `kubectl k8stoken` does)."""
        self.n_files += 1
        path = os.path.join(self.tmp, f"token-{self.n_files}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token)
        return path

    def pod_token(self, ns="pam", sa="pam-user", pod="web-0", node="node-1", audiences=None):
        """A pod-bound token as the kubelet gets it (pod + node claims)."""
        self.h.ensure_sa(ns, sa)
        for create in (lambda: self.api.create_node(node),
                       lambda: self.api.create_pod(ns, pod, sa, node=node)):
            try:
                create()
            except ktest.ApiError as e:
                if e.status != 409:
                    raise
        return self.h.token(ns, sa, audiences=audiences or ("pam-test",),
                            bound={"kind": "Pod", "apiVersion": "v1", "name": pod})

    def reviews(self):
        """How many TokenReviews the API server has answered so far."""
        return self.api.requests()["counts"].get(TOKENREVIEWS, 0)

    # --- clients ----------------------------------------------------------------------------

    def _keep(self, *texts):
        self.h.captured += [t for t in texts if t]

    def ssh(self, user, token, command=None, part_size=None, askpass=None, options=(),
            method="keyboard-interactive", extra_env=None):
        """The OpenSSH client with SSH_ASKPASS (k8stoken-askpass) answering the prompts;
        keyboard-interactive unless method says otherwise. extra_env: e.g. the askpass's
        K8STOKEN_ANSWER_PASSWORD."""
        env = {"K8STOKEN_FILE": self.token_file(token), **(extra_env or {})}
        if part_size:
            env["K8STOKEN_PART_SIZE"] = str(part_size)
        kw = {} if command is None else {"command": command}
        r = self.sshd.run_ssh(user, askpass=askpass or askpass_path(), env=env,
                              options=options, method=method, **kw)
        self._keep(r.stdout, r.stderr)
        return r

    def ssh_password(self, user, token, command=None):
        """The password method, answered by sshpass on ssh's terminal (1,023 at most)."""
        path = self.token_file(token)
        argv = ["sshpass", "-f", path] + self.sshd.ssh_argv(
            user, command or "echo K8S=$K8S_SERVICEACCOUNT", method="password")
        r = subprocess.run(argv, env={"PATH": "/usr/bin:/bin", "HOME": self.tmp, "LANG": "C"},
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace", timeout=60, start_new_session=True)
        self._keep(r.stdout, r.stderr)
        return r

    def pty(self, user, answers, method="keyboard-interactive", command=None):
        kw = {} if command is None else {"command": command}
        code, out, seen = self.sshd.pty_ssh(user, answers, method=method, **kw)
        self._keep(out)
        return code, out, seen

    # --- logs -------------------------------------------------------------------------------

    def logs(self):
        """(sshd log, stderr, module syslog) written during the current test."""
        return self.sshd.logs_since(self.mark)

    def decisions(self):
        return sshd_mod.Sshd.decisions(self.logs()[2])

    def begin_test(self):
        self.api.clear_faults()
        self.api.set_clock_offset(0)
        self.h.write_conf()
        self.h.captured = []
        self.mark = self.sshd.mark()

    def end_test(self):
        reports = [f for f in os.listdir(self.tmp) if f.startswith("asan.")]
        assert not reports, f"AddressSanitizer reports in {self.tmp}: {reports}"
        self.h.captured += list(self.logs())
        try:
            self.h.scan_for_secrets()
        finally:
            self.h.captured = []


@pytest.fixture(scope="session")
def e2e_tmp():
    tmp = tempfile.mkdtemp(prefix="kt-e2e-")
    os.chmod(tmp, 0o755)
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def shim(e2e_tmp):
    return sshd_mod.build_shim(e2e_tmp)


class Worlds:
    def __init__(self, tmp, shim):
        self.tmp, self.shim, self.all = tmp, shim, {}

    def get(self, key="rs256-2048"):
        if key not in self.all:
            self.all[key] = World(key, os.path.join(self.tmp, key), self.shim)
        return self.all[key]

    def stop(self):
        for w in self.all.values():
            w.stop()


@pytest.fixture(scope="session")
def worlds(e2e_tmp, shim):
    require_tools()
    ws = Worlds(e2e_tmp, shim)
    yield ws
    ws.stop()


@pytest.fixture
def world_factory(worlds):
    """world_factory(key) -> World, reset for this test and scanned for secrets after it."""
    used = []

    def get(key="rs256-2048"):
        w = worlds.get(key)
        if w not in used:
            w.begin_test()
            used.append(w)
        return w

    yield get
    for w in used:
        w.end_test()


@pytest.fixture
def w(world_factory):
    """The default world: RS256-2048 signing key."""
    return world_factory("rs256-2048")


@pytest.fixture(scope="session")
def make_world(e2e_tmp, shim):
    """make_world(name, key="rs256-2048", **Sshd keywords) -> a World of the test's own (stop it)."""
    require_tools()

    def make(name, key="rs256-2048", **sshd_kw):
        return World(key, os.path.join(e2e_tmp, name), shim, sshd_kw)
    return make


@pytest.fixture(scope="session")
def askpass():
    return askpass_path()
