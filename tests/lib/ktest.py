"""Client library for tests: start/stop the test apiserver, call its control API and the Kubernetes API.

Standard library only, so any test (pytest, shell via ctl, C test drivers through ctl) can use it.
"""
import http.client
import json
import os
import signal
import ssl
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "apiserver.py")
PYTHON = "/usr/bin/python3"
TOKENREVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status, self.body = status, body


class Client:
    """Talks to a running server described by its state directory."""

    def __init__(self, state_dir, verify=True):
        self.state_dir = state_dir
        self.verify = verify

    def _read(self, name):
        with open(os.path.join(self.state_dir, name)) as f:
            return f.read()

    @property
    def url(self):
        return self._read("url")

    @property
    def port(self):
        return int(self._read("port"))

    @property
    def ca_file(self):
        return os.path.join(self.state_dir, "ca.crt")

    @property
    def kubeconfig(self):
        return os.path.join(self.state_dir, "kubeconfig")

    @property
    def admin_token(self):
        return self._read("admin.token")

    @property
    def reviewer_token(self):
        return self._read("reviewer.token")

    @property
    def reviewer_client_cert(self):
        """CN=pam-k8stoken-reviewer-x509, O=pam-k8stoken:reviewers (bound to system:auth-delegator)."""
        return os.path.join(self.state_dir, "reviewer-client.crt")

    @property
    def reviewer_client_key(self):
        return os.path.join(self.state_dir, "reviewer-client.key")

    def client_cert(self, who="reviewer"):
        """(certificate, key) paths of the reviewer, stranger or untrusted client certificate."""
        return (os.path.join(self.state_dir, f"{who}-client.crt"), os.path.join(self.state_dir, f"{who}-client.key"))

    def ssl_context(self, cert=None):
        """cert: optional (certificate path, key path) to present as TLS client certificate."""
        if not self.verify:
            context = ssl._create_unverified_context()
        else:
            served = os.path.join(self.state_dir, "served-ca.crt")
            context = ssl.create_default_context(cafile=served if os.path.exists(served) else self.ca_file)
        if cert is not None:
            context.load_cert_chain(*cert)
        return context

    # --- raw HTTP ---------------------------------------------------------------------------

    def request(self, method, path, body=None, token=None, headers=None, timeout=30, cert=None):
        """(status, headers dict with lower-case names, body bytes); token=None means admin, "" none;
        cert=(certificate path, key path) presents a client certificate."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ssl_context(cert),
                                           timeout=timeout)
        head = dict(headers or {})
        token = self.admin_token if token is None else token
        if token:
            head["Authorization"] = "Bearer " + token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            head.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=body, headers=head)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def call(self, method, path, body=None, token=None, headers=None, cert=None):
        """(status, decoded JSON or None)."""
        status, _, data = self.request(method, path, body, token, headers, cert=cert)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, None

    def _ok(self, method, path, body=None, expect=(200, 201)):
        status, obj = self.call(method, path, body)
        if status not in expect:
            raise ApiError(status, obj)
        return obj

    # --- control API ------------------------------------------------------------------------

    def add_fault(self, **rule):
        rule.setdefault("path", TOKENREVIEWS)
        return self._ok("POST", "/_test/faults", rule)["id"]

    def clear_faults(self):
        self._ok("DELETE", "/_test/faults")

    def set_clock_offset(self, seconds):
        self._ok("POST", "/_test/clock", {"offset_seconds": seconds})

    def requests(self):
        return self._ok("GET", "/_test/requests")

    def reset_requests(self):
        self._ok("DELETE", "/_test/requests")

    def mint(self, **spec):
        return self._ok("POST", "/_test/mint", spec)["token"]

    def set_config(self, **switches):
        return self._ok("POST", "/_test/config", switches)

    def keys(self):
        """{"signing": kid, "kids": [every trusted, published kid]}."""
        return self._ok("GET", "/_test/keys")

    def add_key(self, key_type=None):
        """A new signing key (rs256-2048, rs256-4096, es256); the old ones stay trusted."""
        return self._ok("POST", "/_test/keys", {"action": "add", "type": key_type})

    def remove_key(self, kid):
        return self._ok("POST", "/_test/keys", {"action": "remove", "kid": kid})

    # --- Kubernetes API ---------------------------------------------------------------------

    def create_sa(self, namespace, name):
        return self._ok("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": name}})

    def delete_sa(self, namespace, name):
        return self._ok("DELETE", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}")

    def create_node(self, name):
        return self._ok("POST", "/api/v1/nodes", {"metadata": {"name": name}})

    def create_pod(self, namespace, name, sa, node=None):
        spec = {"serviceAccountName": sa, "containers": [{"name": "main", "image": "busybox"}]}
        if node:
            spec["nodeName"] = node
        return self._ok("POST", f"/api/v1/namespaces/{namespace}/pods", {"metadata": {"name": name}, "spec": spec})

    def delete_pod(self, namespace, name):
        return self._ok("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}")

    def token_request_raw(self, namespace, name, audiences=None, seconds=None, bound=None, token=None):
        spec = {}
        if audiences:
            spec["audiences"] = list(audiences)
        if seconds is not None:
            spec["expirationSeconds"] = seconds
        if bound:
            spec["boundObjectRef"] = bound
        return self.call("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
                         {"spec": spec}, token)

    def token_request(self, namespace, name, audiences=None, seconds=None, bound=None):
        """The token string; bound e.g. {"kind": "Pod", "apiVersion": "v1", "name": "p"}."""
        status, obj = self.token_request_raw(namespace, name, audiences, seconds, bound)
        if status != 201:
            raise ApiError(status, obj)
        return obj["status"]["token"]

    def token_review(self, token, audiences=None, as_token=None, cert=None):
        """(status, JSON) of a TokenReview, sent with the reviewer's token unless as_token or a client
        certificate (cert=(certificate, key); then no bearer token unless as_token) is given."""
        spec = {"token": token}
        if audiences:
            spec["audiences"] = list(audiences)
        if as_token is None:
            as_token = "" if cert is not None else self.reviewer_token
        return self.call("POST", TOKENREVIEWS, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                                "spec": spec}, as_token, cert=cert)


class ApiServer(Client):
    """A server process of its own: ApiServer().start(tmpdir, key="es256") or `with ApiServer(...)`."""

    def __init__(self, state_dir=None, **flags):
        super().__init__(state_dir, verify=flags.get("cert", "good") in ("good", "unknown-ca"))
        self.flags = flags
        self.process = None

    def start(self, state_dir=None, timeout=60, **flags):
        self.state_dir = state_dir or self.state_dir
        self.flags.update(flags)
        self.verify = self.flags.get("cert", "good") in ("good", "unknown-ca")
        os.makedirs(self.state_dir, exist_ok=True)
        argv = [PYTHON, SERVER, "--state-dir", self.state_dir]
        for name, value in self.flags.items():
            option = "--" + name.replace("_", "-")
            if value is True:
                argv.append(option)
            elif isinstance(value, (list, tuple)):
                argv += [option, ",".join(value)]
            elif value not in (None, False):
                argv += [option, str(value)]
        with open(os.path.join(self.state_dir, "stderr.log"), "ab") as errors:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=errors, stderr=errors)
        ready = os.path.join(self.state_dir, "ready")
        deadline = time.monotonic() + timeout
        while not os.path.exists(ready):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"test apiserver did not start; see {self.state_dir}/stderr.log")
            time.sleep(0.02)
        return self

    def stop(self, timeout=10):
        """SIGTERM and wait; returns the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        status, self.process = self.process.returncode, None
        return status

    def __enter__(self):
        return self if self.process else self.start()

    def __exit__(self, *exc):
        self.stop()
