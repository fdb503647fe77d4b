"""A real Kubernetes control plane on loopback for tests and `make demo-kube`: etcd,
kube-apiserver and kube-controller-manager built by `make kube` (tests/kube/pin.sh pins the
release), with a fresh CA, serving certificate, ServiceAccount signing key and client
certificates per run.

The state directory has the layout of the test API server's (tests/lib/ktest.py), so
ktest.Client and the module tests' Harness work against it unchanged: url, port, ca.crt,
kubeconfig, admin.token, reviewer.token, reviewer-client.crt/key (bound to
system:auth-delegator), stranger-client.crt/key (no binding); plus sa.key, the cluster's
ServiceAccount signing key, so tests can sign tokens the cluster itself would accept.

    with KubeCluster(state_dir) as kube:
        kube.create_sa("pam", "pam-user")

Everything listens on 127.0.0.1 only; stop() ends every process and waits for it.
"""
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import certs
import ktest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

BIN = os.environ.get("KT_KUBE_BIN", os.path.join(ROOT, "build", "kube"))
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
ISSUER = "https://kubernetes.default.svc.cluster.local"
REVIEWER = ("pam-k8stoken", "reviewer")
X509_REVIEWER = ("pam-k8stoken-reviewer-x509", "pam-k8stoken:reviewers")


def missing_binaries():
    return [b for b in BINARIES if not os.access(os.path.join(BIN, b), os.X_OK)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write(path, data, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


class KubeCluster(ktest.Client):
    def __init__(self, state_dir):
        super().__init__(state_dir)
        self.processes = {}
        self.ports = {}

    # --- set-up -----------------------------------------------------------------------------

    def _credentials(self):
        d = self.state_dir
        ca_pem, _, server_pem, server_key, (ca_key, ca_cert) = certs.make("good")
        _write(os.path.join(d, "ca.crt"), ca_pem, 0o644)
        _write(os.path.join(d, "server.crt"), server_pem, 0o644)
        _write(os.path.join(d, "server.key"), server_key)
        for who, (cn, orgs) in {"reviewer": X509_REVIEWER, "stranger": ("stranger", ()),
                                "admin": ("kube-admin", ("system:masters",))}.items():
            cert, key = certs.client(ca_key, ca_cert, cn, (orgs,) if isinstance(orgs, str) else orgs)
            _write(os.path.join(d, f"{who}-client.crt"), cert, 0o644)
            _write(os.path.join(d, f"{who}-client.key"), key)
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write(os.path.join(d, "sa.key"), sa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption()))
        _write(os.path.join(d, "sa.pub"), sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)
        admin = secrets.token_urlsafe(32)
        _write(os.path.join(d, "admin.token"), admin)
        _write(os.path.join(d, "tokens.csv"), f'{admin},kube-admin,kube-admin,"system:masters"\n')

    def _start(self, name, argv, binary=None):
        log = open(os.path.join(self.state_dir, f"{name}.log"), "ab")
        self.processes[name] = subprocess.Popen(
            [os.path.join(BIN, binary or name)] + argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True)
        log.close()

    def _start_etcd(self):
        client, peer = free_port(), free_port()
        self.ports["etcd"] = client
        self._start("etcd", [
            "--name=kt", f"--data-dir={os.path.join(self.state_dir, 'etcd')}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=kt=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync", "--log-level=warn"])

    def _start_apiserver(self, name="kube-apiserver", key_files=None, signing_key=None,
                         port=None):
        """Starts one kube-apiserver of the cluster; returns its port. The first one's URL
        goes into the state directory. key_files/signing_key replace sa.pub/sa.key (key
        rotation: every --service-account-key-file is trusted and published in the JWKS)."""
        d = self.state_dir
        port = port or free_port()
        if name == "kube-apiserver":
            _write(os.path.join(d, "port"), str(port), 0o644)
            _write(os.path.join(d, "url"), f"https://127.0.0.1:{port}", 0o644)
        self._start(name, [
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={port}",
            f"--tls-cert-file={d}/server.crt", f"--tls-private-key-file={d}/server.key",
            f"--client-ca-file={d}/ca.crt", f"--token-auth-file={d}/tokens.csv",
            f"--service-account-issuer={ISSUER}",
            *[f"--service-account-key-file={k}" for k in (key_files or [f"{d}/sa.pub"])],
            f"--service-account-signing-key-file={signing_key or f'{d}/sa.key'}",
            f"--api-audiences={ISSUER}", "--authorization-mode=Node,RBAC",
            "--service-cluster-ip-range=10.96.0.0/24", "--profiling=false",
            "--enable-priority-and-fairness=false", "--v=1"], binary="kube-apiserver")
        return port

    def _start_controller_manager(self):
        d = self.state_dir
        self._start("kube-controller-manager", [
            f"--kubeconfig={d}/kubeconfig", "--controllers=serviceaccount,serviceaccount-token",
            f"--service-account-private-key-file={d}/sa.key", f"--root-ca-file={d}/ca.crt",
            "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0", "--v=1"])

    def _write_kubeconfig(self):
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "kt",
            "clusters": [{"name": "kt", "cluster": {"server": self.url,
                                                    "certificate-authority": self.ca_file}}],
            "users": [{"name": "admin", "user": {"token": self.admin_token}}],
            "contexts": [{"name": "kt", "context": {"cluster": "kt", "user": "admin"}}],
        }
        _write(self.kubeconfig, json.dumps(config, indent=1))

    def _wait(self, what, ready, timeout):
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited {proc.returncode} while waiting for {what}; "
                                       f"see {self.state_dir}/{name}.log")
            try:
                if ready():
                    return
            except (OSError, ktest.ApiError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready after {timeout} s; see {self.state_dir}")
            time.sleep(0.2)

    def _readyz(self):
        status, _, body = self.request("GET", "/readyz", timeout=5)
        return status == 200 and body == b"ok"

    def _bootstrap(self):
        """The reviewer ServiceAccount and the bindings the module's tests need."""
        ns, name = REVIEWER
        for namespace in (ns, "pam", "team-a", "team-b"):
            self._ok("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}},
                     expect=(201, 409))
        self._ok("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": name}},
                 expect=(201, 409))
        for binding, subject in (
                ("pam-k8stoken-reviewer", {"kind": "ServiceAccount", "name": name, "namespace": ns}),
                ("pam-k8stoken-reviewer-x509", {"kind": "Group", "name": X509_REVIEWER[1],
                                                "apiGroup": "rbac.authorization.k8s.io"})):
            self._ok("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
                "metadata": {"name": binding},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "system:auth-delegator"},
                "subjects": [subject]}, expect=(201, 409))
        token = self.token_request(ns, name, seconds=86400)
        _write(os.path.join(self.state_dir, "reviewer.token"), token)

    def start(self, timeout=120):
        os.makedirs(self.state_dir, exist_ok=True)
        missing = missing_binaries()
        if missing:
            raise RuntimeError(f"not built: {', '.join(missing)} in {BIN} (make kube)")
        self._credentials()
        try:
            self._start_etcd()
            self._start_apiserver()
            self._write_kubeconfig()
            self._wait("kube-apiserver /readyz", self._readyz, timeout)
            self._start_controller_manager()
            self._bootstrap()
            # the controller has made the default ServiceAccount of a namespace of ours
            self._wait("kube-controller-manager", lambda: self.call(
                "GET", "/api/v1/namespaces/pam/serviceaccounts/default")[0] == 200, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    # --- control ----------------------------------------------------------------------------

    def stop_process(self, name):
        proc = self.processes.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def stop(self):
        for name in ("kube-controller-manager", "kube-apiserver-2", "kube-apiserver", "etcd"):
            self.stop_process(name)

    def start_second_apiserver(self, timeout=120, key_files=None, signing_key=None, port=None):
        """A second kube-apiserver of the same cluster (same etcd, keys and certificates), as
        a second server of an HA control plane; returns its URL. key_files/signing_key: see
        _start_apiserver."""
        port = self._start_apiserver("kube-apiserver-2", key_files, signing_key, port)
        url = f"https://127.0.0.1:{port}"

        def ready():
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=self.ssl_context(),
                                               timeout=5)
            try:
                conn.request("GET", "/readyz", headers={"Authorization": "Bearer " + self.admin_token})
                resp = conn.getresponse()
                return resp.status == 200 and resp.read() == b"ok"
            finally:
                conn.close()
        self._wait("the second kube-apiserver", ready, timeout)
        return url

    def stop_second_apiserver(self):
        self.stop_process("kube-apiserver-2")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- objects the tests use --------------------------------------------------------------

    def create_namespace(self, name):
        return self._ok("POST", "/api/v1/namespaces", {"metadata": {"name": name}}, expect=(201, 409))

    def legacy_secret(self, namespace, sa, name, timeout=60):
        """A kubernetes.io/service-account-token Secret, filled in by the real token controller;
        returns the token."""
        self._ok("POST", f"/api/v1/namespaces/{namespace}/secrets", {
            "metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": sa}},
            "type": "kubernetes.io/service-account-token"})
        found = {}

        def filled():
            status, obj = self.call("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
            token = (obj or {}).get("data", {}).get("token") if status == 200 else None
            if token:
                import base64
                found["token"] = base64.b64decode(token).decode()
            return bool(token)
        self._wait(f"the token controller to fill secret {namespace}/{name}", filled, timeout)
        return found["token"]

    def delete_secret(self, namespace, name):
        return self._ok("DELETE", f"/api/v1/namespaces/{namespace}/secrets/{name}")

    def signing_key(self):
        with open(os.path.join(self.state_dir, "sa.key"), "rb") as f:
            return f.read()


def main():
    """python3 cluster.py STATE_DIR: start a cluster, print its URL, stop on SIGTERM/SIGINT."""
    state = sys.argv[1]
    shutil.rmtree(state, ignore_errors=True)
    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(1))
    with KubeCluster(state) as kube:
        print(kube.url, flush=True)
        while not stopping:
            signal.pause()


if __name__ == "__main__":
    main()
