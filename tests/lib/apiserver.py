#!/usr/bin/python3
"""A stand-in kube-apiserver for tests: TLS on 127.0.0.1, state files in --state-dir (see README.md)."""
import argparse
import base64
import contextlib
import os
import secrets
import signal
import ssl
import sys
import threading
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import certs  # noqa: E402
import tokens  # noqa: E402
from api import Api  # noqa: E402
from authn import Authenticator  # noqa: E402
from clock import Clock  # noqa: E402
from config import DEFAULT_ISSUER, Config  # noqa: E402
from control import Control  # noqa: E402
from faults import Faults, Recorder  # noqa: E402
from httpd import TLSServer  # noqa: E402
from rbac import Authorizer  # noqa: E402
from store import AUTHN, BY_NAME, RBAC, Store  # noqa: E402

REVIEWER_NAMESPACE, REVIEWER = "pam-k8stoken", "reviewer"
YEAR = 365 * 24 * 3600


def rule(verbs, groups=None, resources=None, urls=None):
    out = {"verbs": verbs}
    if groups is not None:
        out.update(apiGroups=groups, resources=resources)
    if urls is not None:
        out["nonResourceURLs"] = urls
    return out


# Bootstrap policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go), the parts tests meet.
CLUSTER_ROLES = {
    "cluster-admin": [rule(["*"], ["*"], ["*"]), rule(["*"], urls=["*"])],
    "system:auth-delegator": [rule(["create"], [AUTHN], ["tokenreviews"]),
                              rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"])],
    "system:service-account-issuer-discovery": [
        rule(["get"], urls=["/.well-known/openid-configuration", "/openid/v1/jwks"])],
    "system:discovery": [rule(["get"], urls=["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                            "/openapi", "/openapi/*", "/readyz", "/version", "/version/"])],
    "system:public-info-viewer": [rule(["get"], urls=["/healthz", "/livez", "/readyz", "/version",
                                                      "/version/"])],
    "system:basic-user": [rule(["create"], [AUTHN], ["selfsubjectreviews"]),
                          rule(["create"], ["authorization.k8s.io"],
                               ["selfsubjectaccessreviews", "selfsubjectrulesreviews"])],
}
GROUP = "rbac.authorization.k8s.io"
CLUSTER_ROLE_BINDINGS = {
    "cluster-admin": ("cluster-admin", [{"kind": "Group", "apiGroup": GROUP, "name": "system:masters"}]),
    "system:service-account-issuer-discovery": (
        "system:service-account-issuer-discovery",
        [{"kind": "Group", "apiGroup": GROUP, "name": "system:serviceaccounts"}]),
    "system:discovery": ("system:discovery",
                         [{"kind": "Group", "apiGroup": GROUP, "name": "system:authenticated"}]),
    "system:public-info-viewer": ("system:public-info-viewer", [
        {"kind": "Group", "apiGroup": GROUP, "name": "system:authenticated"},
        {"kind": "Group", "apiGroup": GROUP, "name": "system:unauthenticated"}]),
    "system:basic-user": ("system:basic-user",
                          [{"kind": "Group", "apiGroup": GROUP, "name": "system:authenticated"}]),
    "pam-k8stoken-reviewer": ("system:auth-delegator", [
        {"kind": "ServiceAccount", "name": REVIEWER, "namespace": REVIEWER_NAMESPACE}]),
    "pam-k8stoken-reviewer-x509": ("system:auth-delegator", [
        {"kind": "Group", "apiGroup": GROUP, "name": "pam-k8stoken:reviewers"}]),
}
# Client certificates written at start-up: file stem -> (CN, O values, signed by a CA the server trusts).
CLIENT_CERTS = {
    "reviewer-client": ("pam-k8stoken-reviewer-x509", ["pam-k8stoken:reviewers"], True),
    "stranger-client": ("stranger", [], True),
    "untrusted-client": ("pam-k8stoken-reviewer-x509", ["pam-k8stoken:reviewers"], False),
}


class App:
    """Everything one server instance holds."""

    def __init__(self, args):
        self.key_type = args.key
        self.log_path = os.path.join(args.state_dir, "server.log")
        self.clock = Clock()
        self.config = Config(issuer=args.issuer, api_audiences=args.api_audiences or [args.issuer],
                             k8s_version=args.k8s_version, anonymous_auth=args.anonymous_quirk,
                             admin_token=secrets.token_urlsafe(32), loopback_token=secrets.token_urlsafe(32),
                             loopback_uid=str(uuid.uuid4()))
        self.store = Store(self.clock)
        self.key = tokens.SigningKey(args.key)
        authenticator = Authenticator(self.config, self.store, self.clock, [self.key])
        self.api = Api(self.config, self.store, self.clock, authenticator, Authorizer(self.store), self.key)
        self.control = Control(self)
        self.faults = Faults()
        self.recorder = Recorder()

    def bootstrap(self):
        sa = BY_NAME[("", "serviceaccounts")]
        for namespace in ("default", "kube-system", REVIEWER_NAMESPACE):
            self.store.ensure_namespace(namespace)
        self.store.create(sa, REVIEWER_NAMESPACE, {"metadata": {"name": REVIEWER}})
        for name, rules in CLUSTER_ROLES.items():
            self.store.create(BY_NAME[(RBAC, "clusterroles")], "", {"metadata": {"name": name}, "rules": rules})
        for name, (role, subjects) in CLUSTER_ROLE_BINDINGS.items():
            self.store.create(BY_NAME[(RBAC, "clusterrolebindings")], "", {
                "metadata": {"name": name}, "subjects": subjects,
                "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role}})


def write_file(state_dir, name, data, mode=0o600):
    path = os.path.join(state_dir, name)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def kubeconfig(url, ca_pem, token):
    ca = base64.b64encode(ca_pem).decode()
    return (f"apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n"
            f"    certificate-authority-data: {ca}\n    server: {url}\n"
            f"contexts:\n- name: test\n  context:\n    cluster: test\n    user: admin\n"
            f"    namespace: default\ncurrent-context: test\n"
            f"users:\n- name: admin\n  user:\n    token: {token}\n")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--k8s-version", default="1.31.4")
    parser.add_argument("--key", choices=tokens.KEY_TYPES, default="rs256-2048")
    parser.add_argument("--cert", choices=certs.CERT_MODES, default="good")
    parser.add_argument("--anonymous-quirk", action="store_true",
                        help="--anonymous-auth=true: credential-less callers and whitespace tokens "
                             "become system:anonymous")
    parser.add_argument("--issuer", default=DEFAULT_ISSUER)
    parser.add_argument("--api-audiences", type=lambda s: [a for a in s.split(",") if a], default=None)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.state_dir, mode=0o700, exist_ok=True)
    app = App(args)
    ca_pem, signer_pem, cert_pem, key_pem, _ = certs.make(args.cert)
    # --client-ca-file: its own CA, as clusters commonly have; OpenSSL would otherwise also
    # serve a CA from the verify store in the chain, which kube-apiserver never does.
    client_ca_key, client_ca_cert = certs.new_ca("test client CA")
    write_file(args.state_dir, "server.crt", cert_pem, 0o644)
    write_file(args.state_dir, "server.key", key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(args.state_dir, "server.crt"), os.path.join(args.state_dir, "server.key"))
    context.set_alpn_protocols(["http/1.1"])
    # A client certificate is optional, but one that does not verify fails the handshake.
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(cadata=certs.pem(client_ca_cert).decode())
    server = TLSServer(("127.0.0.1", args.port), context, app)
    port = server.server_address[1]
    app.config.url = f"https://127.0.0.1:{port}"
    app.config.ca_pem = ca_pem
    app.bootstrap()
    reviewer = app.api.issue_token(REVIEWER_NAMESPACE, REVIEWER, app.config.api_audiences, YEAR)

    write_file(args.state_dir, "ca.crt", ca_pem, 0o644)
    if args.cert == "unknown-ca":
        write_file(args.state_dir, "served-ca.crt", signer_pem, 0o644)
    write_file(args.state_dir, "url", app.config.url)
    write_file(args.state_dir, "port", str(port))
    write_file(args.state_dir, "admin.token", app.config.admin_token)
    write_file(args.state_dir, "loopback.token", app.config.loopback_token)
    write_file(args.state_dir, "reviewer.token", reviewer)
    write_file(args.state_dir, "kubeconfig", kubeconfig(app.config.url, ca_pem, app.config.admin_token))
    write_file(args.state_dir, "client-ca.crt", certs.pem(client_ca_cert), 0o644)
    untrusted = certs.new_ca("untrusted test client CA")
    for stem, (common_name, organizations, trusted) in CLIENT_CERTS.items():
        crt, key = certs.client(*((client_ca_key, client_ca_cert) if trusted else untrusted), common_name,
                                organizations)
        write_file(args.state_dir, stem + ".crt", crt, 0o644)
        write_file(args.state_dir, stem + ".key", key)
    write_file(args.state_dir, "pid", str(os.getpid()))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    write_file(args.state_dir, "ready", "")
    stop.wait()
    server.shutdown()
    server.server_close()
    for name in ("ready", "pid"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(args.state_dir, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
