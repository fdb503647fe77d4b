"""Host access from Kubernetes RBAC (docs/design.md §10) against a real kube-apiserver 1.34:
grants and revocations made with the real kubectl, the module's decisions through the real
libpam driver (PAM code, reason and access= of the decision line), the stand-in's
SubjectAccessReview replies compared with the real server's, failures of the
SubjectAccessReview made by a proxy that tampers with the real server's replies, and one
ssh login with the access review on. The time from `kubectl delete clusterrolebinding` to the
first refused login is measured and printed."""
import http.client
import http.server
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

import certs
from harness import AUDIENCE, BUILD, TIMEOUT
from test_differential import differences, normalise, stand_in  # noqa: F401
from test_real_cluster import expect, kubectl, until_denied

SAR = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
GROUP = "pam.k8stoken.io"
HOST = "bastion-1"
ACCESS = f"access_review = yes\nhost_name = {HOST}\n"
ASKPASS = os.path.join(BUILD, "k8stoken-askpass")


def cluster_role(name, verbs=("login",), resources=("hosts",), names=(HOST,)):
    rule = {"apiGroups": [GROUP], "resources": list(resources), "verbs": list(verbs)}
    if names:
        rule["resourceNames"] = list(names)
    return json.dumps({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                       "metadata": {"name": name}, "rules": [rule]})


def grant(kube, name, group, **role):
    """kubectl apply -f (the ClusterRole) and kubectl create clusterrolebinding --group."""
    kubectl(kube, "apply", "-f", "-", stdin=cluster_role(name, **role))
    kubectl(kube, "create", "clusterrolebinding", name, f"--clusterrole={name}", f"--group={group}")


def token(kube, h, ns, name):
    kube.call("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})   # 409 when it exists
    h.ensure_sa(ns, name)
    tok = kubectl(kube, "create", "token", name, "-n", ns, f"--audience={AUDIENCE}",
                  "--duration=10m").stdout.strip()
    h.secrets.append(tok)
    return tok


def conf(h, ns, extra="", **kw):
    h.write_conf(rules=[f"map serviceaccount:{ns}/* {{name}}"], extra=ACCESS + extra, **kw)


def test_kubectl_create_clusterrole_takes_verb_login_but_not_the_virtual_resource(kube):
    """--verb=login passes kubectl's verb check with a warning; --resource=hosts.pam.k8stoken.io
    does not, since kubectl resolves resources through discovery: the ClusterRole is applied
    from a manifest (conf/access-rbac.yaml) instead."""
    proc = kubectl(kube, "create", "clusterrole", "ar-kubectl", "--verb=login",
                   f"--resource=hosts.{GROUP}", f"--resource-name={HOST}", check=False)
    assert proc.returncode == 1
    assert "Warning: 'login' is not a standard resource verb" in proc.stderr
    assert f'the server doesn\'t have a resource type "hosts" in group "{GROUP}"' in proc.stderr
    proc = kubectl(kube, "create", "clusterrole", "ar-kubectl-pods", "--verb=login",
                   "--resource=pods")
    assert "Warning: 'login' is not a standard resource verb" in proc.stderr
    kubectl(kube, "apply", "-f", "-", stdin=cluster_role("ar-kubectl"))
    rules = json.loads(kubectl(kube, "get", "clusterrole", "ar-kubectl", "-o", "json").stdout)["rules"]
    assert rules == [{"apiGroups": [GROUP], "resourceNames": [HOST], "resources": ["hosts"],
                      "verbs": ["login"]}]


def test_allowed_by_clusterrolebinding_and_revoked_by_kubectl_delete(kube, h):
    ns, ttl = "kar-crb", 5
    tok = token(kube, h, ns, "alice")
    conf(h, ns, cache_ttl=ttl)
    expect(h.run("alice", tok), "PAM_AUTH_ERR", "access_denied", access="denied")
    grant(kube, "kar-crb", f"system:serviceaccounts:{ns}")
    d = expect(h.run("alice", tok), "PAM_SUCCESS", "ok", access="allowed", cache="miss")
    assert d["sa"] == f"{ns}/alice"
    started = time.monotonic()
    kubectl(kube, "delete", "clusterrolebinding", "kar-crb")
    r, seconds = until_denied(h, "alice", tok, started, ttl + 30)
    expect(r, "PAM_AUTH_ERR", "access_denied", access="denied", cache="miss")
    print(f"\nkubectl delete clusterrolebinding -> first refused login: {seconds:.1f} s "
          f"(cache_ttl {ttl} s)")
    assert seconds <= ttl + 3, seconds


def test_revocation_without_cache_is_the_api_servers_rbac_propagation(kube, h):
    ns = "kar-nocache"
    tok = token(kube, h, ns, "alice")
    conf(h, ns, cache_ttl=0)
    grant(kube, "kar-nocache", f"system:serviceaccounts:{ns}")
    time.sleep(2)
    expect(h.run("alice", tok), "PAM_SUCCESS", "ok", access="allowed")
    started = time.monotonic()
    kubectl(kube, "delete", "clusterrolebinding", "kar-nocache")
    r, seconds = until_denied(h, "alice", tok, started, 30)
    expect(r, "PAM_AUTH_ERR", "access_denied", access="denied")
    print(f"\nkubectl delete clusterrolebinding -> first refused login: {seconds:.1f} s (no cache)")
    assert seconds <= 3, seconds


def test_binding_for_another_host_is_denied(kube, h):
    ns = "kar-other"
    tok = token(kube, h, ns, "alice")
    grant(kube, "kar-other", f"system:serviceaccounts:{ns}", names=("bastion-2",))
    conf(h, ns)
    expect(h.run("alice", tok), "PAM_AUTH_ERR", "access_denied", access="denied")
    h.write_conf(rules=[f"map serviceaccount:{ns}/* {{name}}"],
                 extra="access_review = yes\nhost_name = bastion-2\n")
    expect(h.run("alice", tok), "PAM_SUCCESS", "ok", access="allowed")


def test_allowed_by_rolebinding_with_access_namespace(kube, h):
    ns, hosts = "kar-rb", "kar-rb-hosts"
    tok = token(kube, h, ns, "alice")
    kubectl(kube, "create", "namespace", hosts)
    role = json.loads(cluster_role("login"))
    role.update(kind="Role", metadata={"name": "login", "namespace": hosts})
    kubectl(kube, "apply", "-f", "-", stdin=json.dumps(role))
    kubectl(kube, "create", "rolebinding", "ops", "-n", hosts, "--role=login",
            f"--serviceaccount={ns}:alice")
    conf(h, ns)
    expect(h.run("alice", tok), "PAM_AUTH_ERR", "access_denied", access="denied")
    conf(h, ns, extra=f"access_namespace = {hosts}\n")
    expect(h.run("alice", tok), "PAM_SUCCESS", "ok", access="allowed")


def test_subresource_names_the_local_account(kube, h):
    ns = "kar-sub"
    tok = token(kube, h, ns, "ci")
    grant(kube, "kar-sub", f"system:serviceaccounts:{ns}", resources=("hosts/deploy",))
    h.write_conf(rules=[f"map serviceaccount:{ns}/ci deploy", f"map serviceaccount:{ns}/ci robot"],
                 extra=ACCESS + "access_subresource = %u\n")
    expect(h.run("deploy", tok), "PAM_SUCCESS", "ok", access="allowed")
    expect(h.run("robot", tok), "PAM_AUTH_ERR", "access_denied", access="denied")


def test_sudo_configuration_asks_for_verb_sudo(kube, h):
    ns = "kar-sudo"
    tok = token(kube, h, ns, "alice")
    grant(kube, "kar-sudo-login", f"system:serviceaccounts:{ns}")
    conf(h, ns, extra="access_verb = sudo\n")
    expect(h.run("alice", tok), "PAM_AUTH_ERR", "access_denied", access="denied")
    grant(kube, "kar-sudo", f"system:serviceaccounts:{ns}", verbs=("sudo",))
    expect(h.run("alice", tok), "PAM_SUCCESS", "ok", access="allowed")


def test_reviewer_without_subjectaccessreviews_is_rejected(kube, h):
    """A reviewer bound to a role with tokenreviews only: the real 403 is reviewer_rejected, and
    k8stoken selftest says what is missing."""
    ns = "kar-403"
    tok = token(kube, h, ns, "alice")
    grant(kube, "kar-403", f"system:serviceaccounts:{ns}")
    kubectl(kube, "create", "namespace", "kar-reviewers")
    kubectl(kube, "create", "serviceaccount", "tr-only", "-n", "kar-reviewers")
    kubectl(kube, "apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "kar-tr-only"}, "rules": [{"apiGroups": ["authentication.k8s.io"],
                                                         "resources": ["tokenreviews"],
                                                         "verbs": ["create"]}]}))
    kubectl(kube, "create", "clusterrolebinding", "kar-tr-only", "--clusterrole=kar-tr-only",
            "--serviceaccount=kar-reviewers:tr-only")
    reviewer = kubectl(kube, "create", "token", "tr-only", "-n", "kar-reviewers").stdout.strip()
    h.secrets.append(reviewer)
    h._write_private(h.reviewer_file, reviewer)
    conf(h, ns)
    d = expect(h.run("alice", tok), "PAM_AUTHINFO_UNAVAIL", "reviewer_rejected", access="none")
    assert d["detail"] == '"SubjectAccessReview: HTTP status 403"'
    tool = h.tool_command(["selftest", "--conf", h.conf, "--helper", h.helper])
    proc = subprocess.run(tool, env=h.tool_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout
    assert f"FAIL  {kube.url}: the reviewer may not create subjectaccessreviews" in proc.stdout
    h._write_private(h.reviewer_file, kube.reviewer_token)
    proc = subprocess.run(tool, env=h.tool_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout
    assert f"ok    {kube.url}: reviewer may create subjectaccessreviews (access_review)" in proc.stdout


def test_check_prints_the_access_decision(kube, h):
    ns = "kar-check"
    tok = token(kube, h, ns, "alice")
    grant(kube, "kar-check", f"system:serviceaccounts:{ns}")
    conf(h, ns)
    tool = h.tool_command(["check", "--conf", h.conf, "--user", "alice", "--helper", h.helper])
    proc = subprocess.run(tool, input=tok, env=h.tool_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout
    assert "access:          allowed\n" in proc.stdout
    assert f"access asked:    verb=login group={GROUP} resource=hosts name={HOST}\n" in proc.stdout


# --- the stand-in's replies against the real server's ---------------------------------------

def sar(user=None, groups=None, attrs=None, kind="SubjectAccessReview", extra=None, uid=None):
    spec = {}
    if attrs is not None:
        spec["resourceAttributes"] = attrs
    for key, value in (("user", user), ("groups", groups), ("extra", extra), ("uid", uid)):
        if value is not None:
            spec[key] = value
    return {"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": spec}


LOGIN = {"verb": "login", "group": GROUP, "resource": "hosts", "name": HOST}
SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:dar", "system:authenticated"]
CASES = {
    "allowed_by_group": sar("system:serviceaccount:dar:alice", SA_GROUPS, LOGIN,
                            extra={"authentication.kubernetes.io/credential-id": ["JTI=x"]}, uid="u"),
    "allowed_by_rolebinding": sar("system:serviceaccount:dar:bob", SA_GROUPS,
                                  dict(LOGIN, namespace="dar-hosts")),
    "subresource": sar("system:serviceaccount:dar:alice", SA_GROUPS, dict(LOGIN, subresource="deploy")),
    "denied": sar("system:serviceaccount:dar:carol", ["system:authenticated"], LOGIN),
    "masters": sar("x", ["system:masters"], LOGIN),
    "no_subject": sar(attrs=LOGIN),
    "no_attributes": sar("x"),
    "self": {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
             "spec": {"resourceAttributes": {"verb": "create", "group": "authorization.k8s.io",
                                             "resource": "subjectaccessreviews"}}},
}


def setup_differential(side):
    def post(path, body):
        status, obj = side.call("POST", path, body)
        assert status in (201, 409), (path, obj)
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    post("/api/v1/namespaces", {"metadata": {"name": "dar-hosts"}})
    post(f"{rbac}/clusterroles", json.loads(cluster_role("dar-login")))
    post(f"{rbac}/clusterroles", json.loads(cluster_role("dar-deploy", resources=("hosts/deploy",))))
    post(f"{rbac}/clusterrolebindings", {
        "metadata": {"name": "dar-login"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                       "kind": "ClusterRole", "name": "dar-login"},
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                      "name": "system:serviceaccounts:dar"}]})
    post(f"{rbac}/clusterrolebindings", {
        "metadata": {"name": "dar-deploy"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                        "kind": "ClusterRole", "name": "dar-deploy"},
        "subjects": [{"kind": "ServiceAccount", "name": "alice", "namespace": "dar"}]})
    role = json.loads(cluster_role("login"))
    role.update(kind="Role", metadata={"name": "login", "namespace": "dar-hosts"})
    post(f"{rbac}/namespaces/dar-hosts/roles", role)
    post(f"{rbac}/namespaces/dar-hosts/rolebindings", {
        "metadata": {"name": "bob"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                 "kind": "Role", "name": "login"},
        "subjects": [{"kind": "ServiceAccount", "name": "bob", "namespace": "dar"}]})


def test_stand_in_answers_subjectaccessreviews_as_kube_does(kube, stand_in):
    setup_differential(kube)
    setup_differential(stand_in)
    time.sleep(2)   # kube's RBAC authorizer reads bindings from an informer
    found = []
    for name, body in sorted(CASES.items()):
        path = SSAR if body["kind"] == "SelfSubjectAccessReview" else SAR
        sides = []
        for side in (kube, stand_in):
            status, headers, raw = side.request("POST", path, json.dumps(body).encode(),
                                                token=side.reviewer_token)
            sides.append(normalise((status, {k.lower(): v for k, v in headers.items()}, raw)))
        found += [f"{name}: {d}" for d in differences(*sides)]
    assert not found, "\n".join(found)


# --- failures of the SubjectAccessReview, made by a proxy in front of the real server --------

class Tamper(http.server.ThreadingHTTPServer):
    """TLS on loopback with a CA of its own; forwards to kube and changes its SAR replies."""

    def __init__(self, kube, tmp):
        super().__init__(("127.0.0.1", 0), TamperHandler)
        ca, _, cert, key, _ = certs.make("good")
        self.ca_file = os.path.join(tmp, "proxy-ca.crt")
        for name, data in (("proxy-ca.crt", ca), ("proxy.crt", cert), ("proxy.key", key)):
            with open(os.path.join(tmp, name), "wb") as f:
                f.write(data)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(tmp, "proxy.crt"), os.path.join(tmp, "proxy.key"))
        self.socket = ctx.wrap_socket(self.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server_address[1]}"
        self.kube, self.mode = kube, None
        threading.Thread(target=self.serve_forever, daemon=True).start()


class TamperHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        kube = self.server.kube
        conn = http.client.HTTPSConnection("127.0.0.1", kube.port,
                                           context=ssl.create_default_context(cafile=kube.ca_file))
        conn.request("POST", self.path, body, {k: v for k, v in self.headers.items()
                                               if k.lower() in ("authorization", "content-type",
                                                                "accept", "user-agent")})
        reply = conn.getresponse()
        status, data = reply.status, reply.read()
        conn.close()
        mode = self.server.mode if self.path == SAR else None
        if mode == "500":
            status, data = 500, b'{"kind":"Status","apiVersion":"v1","code":500}'
        elif mode == "timeout":
            time.sleep(TIMEOUT + 2)
        elif mode is not None:   # ("allowed", value): the real reply with allowed of another type
            obj = json.loads(data)
            obj["status"]["allowed"] = mode[1]
            data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.mark.parametrize("mode, reason", [
    ("500", "http_status"), ("timeout", "timeout"), ("true_string", "malformed_reply"),
    ("one", "malformed_reply"), ("null", "malformed_reply")])
def test_subjectaccessreview_failure_is_unavailable(kube, h, mode, reason):
    ns = "kar-fail"
    tok = token(kube, h, ns, "alice")
    grant_name = f"kar-fail-{mode}".replace("_", "-")
    grant(kube, grant_name, f"system:serviceaccounts:{ns}")
    proxy = Tamper(kube, h.tmp)
    try:
        conf(h, ns, servers=[proxy.url], ca_file=proxy.ca_file, cache_ttl=30)
        expect(h.run("alice", tok), "PAM_SUCCESS", "ok", access="allowed")   # untouched: allowed
        h.write_conf(rules=[f"map serviceaccount:{ns}/* {{name}}"], extra=ACCESS,
                     servers=[proxy.url], ca_file=proxy.ca_file, cache_dir=h.cache_dir + "-2",
                     cache_ttl=30)
        forged = {"true_string": "true", "one": 1, "null": None}
        proxy.mode = ("allowed", forged[mode]) if mode in forged else mode
        d = expect(h.run("alice", tok), "PAM_AUTHINFO_UNAVAIL", reason, access="none")
        assert d["detail"].startswith('"SubjectAccessReview: '), d
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_ssh_login_with_access_review(kube, h):
    """The real sshd and ssh client, the module with access_review = yes: allowed while the
    ClusterRoleBinding exists, refused (access_denied) once kubectl deleted it."""
    import sshd as sshd_mod
    assert os.geteuid() == 0, "sshd runs as root"
    ns = "kar-ssh"
    tmp = tempfile.mkdtemp(prefix="kt-karssh-")
    os.chmod(tmp, 0o755)
    shim = sshd_mod.build_shim(tmp)
    tok = token(kube, h, ns, "alice")
    token_file = os.path.join(tmp, "token")
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(tok)
    grant(kube, "kar-ssh", f"system:serviceaccounts:{ns}")
    conf(h, ns)
    with sshd_mod.Sshd(h.module_line(), tmp=os.path.join(tmp, "sshd"), shim=shim) as sshd:
        outcomes = []
        for step in ("granted", "revoked"):
            if step == "revoked":
                kubectl(kube, "delete", "clusterrolebinding", "kar-ssh")
                time.sleep(2)   # the RBAC informer
            mark = sshd.mark()
            r = sshd.run_ssh("alice", askpass=ASKPASS, env={"K8STOKEN_FILE": token_file})
            logs = sshd.logs_since(mark)
            h.captured += [r.stdout, r.stderr, *logs]
            decisions = sshd_mod.Sshd.decisions(logs[2]) or sshd_mod.Sshd.decisions(logs[1])
            outcomes.append((r.returncode == 0, [(d["verdict"], d["reason"], d.get("access"))
                                                 for d in decisions]))
    assert outcomes[0] == (True, [("allow", "ok", "allowed")]), outcomes
    assert not outcomes[1][0] and outcomes[1][1][0] == ("deny", "access_denied", "denied"), outcomes
