"""A host enrolled by `kubectl k8stoken enroll` (the real kubectl) in a test: its bundle, the
files `k8stoken enroll --bundle` installs under the test's directory, and runners for the plugin
and the tool (checked in the sanitizer and valgrind passes, harness.tool_command). Shared by
tests/module/test_enroll.py (the test API server) and tests/kube/test_enroll.py (kube-apiserver)."""
import base64
import json
import os
import stat
import subprocess
import uuid

from harness import ROOT

PLUGIN = os.path.join(ROOT, "pam_k8stoken", "tools", "kubectl-k8stoken")
NS = "pam-k8stoken"


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def host_name():
    return "web-" + uuid.uuid4().hex[:8]


class Host:
    """One enrolled host of a test: its name, bundle and installed files under h.tmp/etc."""

    def __init__(self, h, name):
        self.h, self.name, self.sa = h, name, "reviewer-" + name
        self.etc = os.path.join(h.tmp, "etc")
        self.bundle = os.path.join(h.tmp, "bundle-" + name)
        self.conf = os.path.join(self.etc, "pam_k8stoken.conf")
        self.ca = os.path.join(self.etc, "ca", "ca.crt")
        self.token_file = os.path.join(self.etc, "reviewer.token")
        self.home = os.path.join(h.tmp, "home")
        os.makedirs(self.home, exist_ok=True)

    def plugin_env(self, path=None):
        return {"PATH": path or "/usr/bin:/bin", "HOME": self.home, "KUBECONFIG": self.h.api.kubeconfig,
                "TMPDIR": self.h.tmp}

    def plugin(self, *args, path=None, prefix=()):
        proc = subprocess.run([*prefix, "sh", PLUGIN, *args], capture_output=True, text=True,
                              env=self.plugin_env(path), timeout=120)
        self.h.captured += [proc.stdout, proc.stderr]
        return proc

    def enroll(self, *extra, output=None):
        return self.plugin("enroll", self.name, "--output", output or self.bundle, "--ca-path", self.ca,
                           "--token-path", self.token_file, *extra)

    def tool(self, *args, name="tool"):
        proc = subprocess.run(self.h.tool_command([*args], name=name), capture_output=True, text=True,
                              env=self.h.tool_env(name), timeout=120)
        self.h.captured += [proc.stdout, proc.stderr]
        return proc

    def install(self, *extra):
        """k8stoken enroll --bundle; the installed configuration then gets the test's own
        cache directory, so that the circuit breaker's records stay in the test."""
        proc = self.tool("enroll", "--bundle", self.bundle, "--conf", self.conf, "--helper",
                         self.h.helper, *extra)
        if proc.returncode == 0:
            with open(self.conf, "a") as f:
                f.write(f"cache_dir = {self.h.tmp}/cache\n")
        return proc

    def renew(self, *extra, name="tool"):
        return self.tool("renew", "--conf", self.conf, *extra, name=name)

    def token(self):
        tok = open(self.token_file).read()
        self.h.secrets.append(tok.strip())
        return tok

    def set_token(self, tok):
        self.h.secrets.append(tok)
        with open(self.token_file, "w") as f:
            f.write(tok + "\n")

    def use_for_logins(self):
        """The installed configuration plus what the test world needs (its timeouts,
        local_verify = no, no review cache) and a map rule: the module then runs with it."""
        with open(self.conf, "a") as f:
            f.write("timeout = 3\nconnect_timeout = 1\n"
                    "cache_ttl = 0\nnegative_cache_ttl = 0\nlocal_verify = no\n"
                    "map serviceaccount:pam/pam-user alice\n")
        self.h.conf = self.conf
        self.h.write_service()

    def login(self):
        return self.h.run("alice", self.h.token(audiences=(f"ssh://{self.name}",)))


def enrolled(h, *extra):
    host = Host(h, host_name())
    proc = host.enroll(*extra)
    assert proc.returncode == 0, proc.stderr
    proc = host.install()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    host.token()
    return host


def mode(path):
    st = os.stat(path)
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def expect(r, code, reason):
    d = r.decision()
    assert d is not None, r
    assert (r.code, d["reason"]) == (code, reason), r
