"""Host access from Kubernetes RBAC (docs/design.md §10): with access_review = yes the helper
sends one SubjectAccessReview after a successful TokenReview and the local rules, and the login
goes through only when RBAC allows it. Through the real libpam driver against the stand-in,
whose RBAC evaluator answers the SubjectAccessReview; the grants are made with the real
kubectl where kubectl can make them (the manifest of conf/access-rbac.yaml's shape otherwise:
kubectl create clusterrole cannot name a resource the server does not serve).
Every case asserts the PAM code and the reason and access= fields of the decision line."""
import json
import os
import socket
import subprocess
import tempfile
import time

import pytest

from harness import DEADLINE_MS, TIMEOUT

SAR = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
TR = "/apis/authentication.k8s.io/v1/tokenreviews"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
GROUP = "pam.k8stoken.io"
HOST = "bastion-1"
KUBECTL = "/usr/bin/kubectl"
ACCESS = f"access_review = yes\nhost_name = {HOST}\n"


def kubectl(api, *args, stdin=None):
    """The real kubectl with the server's kubeconfig and a HOME of its own."""
    home = tempfile.mkdtemp(prefix="kt-kubectl-")
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "KUBECONFIG": api.kubeconfig}
    return subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True, env=env,
                          timeout=120)


def ok(proc):
    assert proc.returncode == 0, proc.stderr
    return proc


def expect(r, code, reason, access):
    d = r.decision()
    assert d is not None, r
    assert (r.code, d["reason"], d.get("access")) == (code, reason, access), r
    return d


def rule(verbs, resources=("hosts",), names=(HOST,), groups=(GROUP,)):
    out = {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}
    if names:
        out["resourceNames"] = list(names)
    return out


class Rbac:
    """RBAC objects of one test, removed at its end (the stand-in lives for the session)."""

    def __init__(self, api):
        self.api, self.made = api, []

    def _post(self, path, body):
        status, obj = self.api.call("POST", path, body)
        assert status == 201, obj
        self.made.append(f"{path}/{body['metadata']['name']}")

    def cluster_role(self, name, rules):
        self._post(f"{RBAC}/clusterroles", {"metadata": {"name": name}, "rules": rules})

    def role(self, ns, name, rules):
        self.api.call("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        self._post(f"{RBAC}/namespaces/{ns}/roles", {"metadata": {"name": name}, "rules": rules})

    def cluster_binding(self, name, role, group):
        """kubectl create clusterrolebinding NAME --clusterrole=ROLE --group=GROUP."""
        ok(kubectl(self.api, "create", "clusterrolebinding", name, f"--clusterrole={role}",
                   f"--group={group}"))
        self.made.append(f"{RBAC}/clusterrolebindings/{name}")

    def role_binding(self, ns, name, role, serviceaccount):
        ok(kubectl(self.api, "create", "rolebinding", name, "-n", ns, f"--role={role}",
                   f"--serviceaccount={serviceaccount}"))
        self.made.append(f"{RBAC}/namespaces/{ns}/rolebindings/{name}")

    def delete(self, path):
        status, obj = self.api.call("DELETE", path)
        assert status == 200, obj
        self.made.remove(path)

    def clean(self):
        for path in reversed(self.made):
            self.api.call("DELETE", path)


@pytest.fixture
def rbac(h):
    objects = Rbac(h.api)
    yield objects
    objects.clean()


def access_conf(h, ns, extra="", **kw):
    h.write_conf(rules=[f"map serviceaccount:{ns}/* {{name}}", "deny serviceaccount:kube-system/*"],
                 extra=ACCESS + extra, **kw)


def sar_requests(h):
    return [json.loads(r["body"]) for r in h.api.requests()["last"] if r["path"] == SAR]


def test_allowed_by_clusterrolebinding_sends_the_reviewed_identity(h, rbac):
    ns = "ar-crb"
    token = h.token(ns, "alice")
    rbac.cluster_role("ar-crb-login", [rule(["login"])])
    rbac.cluster_binding("ar-crb", "ar-crb-login", f"system:serviceaccounts:{ns}")
    access_conf(h, ns)
    h.api.reset_requests()
    r = h.run("alice", token)
    expect(r, "PAM_SUCCESS", "ok", "allowed")
    review = h.api.token_review(token, ["pam-test"])[1]["status"]["user"]
    (sent,) = sar_requests(h)
    assert sent == {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
        "resourceAttributes": {"verb": "login", "group": GROUP, "resource": "hosts", "name": HOST},
        "user": review["username"], "groups": review["groups"], "extra": review["extra"],
        "uid": review["uid"]}}
    assert token not in json.dumps(sent)
    # without access_review the same login sends no SubjectAccessReview and says access=off
    h.write_conf(rules=[f"map serviceaccount:{ns}/* {{name}}"])
    h.api.reset_requests()
    expect(h.run("alice", token), "PAM_SUCCESS", "ok", "off")
    assert sar_requests(h) == []


def test_no_binding_is_denied(h, rbac):
    ns = "ar-none"
    token = h.token(ns, "alice")
    access_conf(h, ns)
    d = expect(h.run("alice", token), "PAM_AUTH_ERR", "access_denied", "denied")
    assert d["sa"] == f"{ns}/alice"


def test_binding_for_another_host_is_denied(h, rbac):
    ns = "ar-other"
    token = h.token(ns, "alice")
    rbac.cluster_role("ar-other-login", [rule(["login"], names=("bastion-2",))])
    rbac.cluster_binding("ar-other", "ar-other-login", f"system:serviceaccounts:{ns}")
    access_conf(h, ns)
    expect(h.run("alice", token), "PAM_AUTH_ERR", "access_denied", "denied")
    # the same grant names bastion-2: allowed there
    h.write_conf(rules=[f"map serviceaccount:{ns}/* {{name}}"],
                 extra="access_review = yes\nhost_name = bastion-2\n")
    expect(h.run("alice", token), "PAM_SUCCESS", "ok", "allowed")


def test_default_name_is_this_hosts_name(h, rbac):
    ns = "ar-host"
    token = h.token(ns, "alice")
    rbac.cluster_role("ar-host-login", [rule(["login"], names=(socket.gethostname(),))])
    rbac.cluster_binding("ar-host", "ar-host-login", f"system:serviceaccounts:{ns}")
    h.write_conf(rules=[f"map serviceaccount:{ns}/* {{name}}"], extra="access_review = yes\n")
    expect(h.run("alice", token), "PAM_SUCCESS", "ok", "allowed")


def test_allowed_by_rolebinding_with_access_namespace(h, rbac):
    ns, hosts = "ar-rb", "ar-rb-hosts"
    token = h.token(ns, "alice")
    rbac.role(hosts, "login", [rule(["login"])])
    rbac.role_binding(hosts, "ops", "login", f"{ns}:alice")
    access_conf(h, ns)   # cluster scope: a RoleBinding does not count
    expect(h.run("alice", token), "PAM_AUTH_ERR", "access_denied", "denied")
    access_conf(h, ns, extra=f"access_namespace = {hosts}\n")
    expect(h.run("alice", token), "PAM_SUCCESS", "ok", "allowed")
    assert sar_requests(h)[-1]["spec"]["resourceAttributes"]["namespace"] == hosts


def test_deleting_the_binding_denies_after_cache_ttl(h, rbac):
    ns, ttl = "ar-revoke", 3
    token = h.token(ns, "alice")
    rbac.cluster_role("ar-revoke-login", [rule(["login"])])
    rbac.cluster_binding("ar-revoke", "ar-revoke-login", f"system:serviceaccounts:{ns}")
    access_conf(h, ns, cache_ttl=ttl)
    h.api.reset_requests()
    d = expect(h.run("alice", token), "PAM_SUCCESS", "ok", "allowed")
    assert d["cache"] == "miss"
    stored = time.monotonic()
    ok(kubectl(h.api, "delete", "clusterrolebinding", "ar-revoke"))
    rbac.made.remove(f"{RBAC}/clusterrolebindings/ar-revoke")
    # cached together with the review: one TokenReview and one SubjectAccessReview in all
    d = expect(h.run("alice", token), "PAM_SUCCESS", "ok", "allowed")
    assert d["cache"] == "hit" and len(sar_requests(h)) == 1
    time.sleep(max(0.0, ttl + 0.2 - (time.monotonic() - stored)))
    d = expect(h.run("alice", token), "PAM_AUTH_ERR", "access_denied", "denied")
    assert d["cache"] == "miss"


def test_a_denial_is_never_cached(h, rbac):
    ns = "ar-nocache"
    token = h.token(ns, "alice")
    access_conf(h, ns, cache_ttl=60)
    expect(h.run("alice", token), "PAM_AUTH_ERR", "access_denied", "denied")
    rbac.cluster_role("ar-nocache-login", [rule(["login"])])
    rbac.cluster_binding("ar-nocache", "ar-nocache-login", f"system:serviceaccounts:{ns}")
    d = expect(h.run("alice", token), "PAM_SUCCESS", "ok", "allowed")
    assert d["cache"] == "miss"


def test_subresource_names_the_local_account(h, rbac):
    ns = "ar-sub"
    token = h.token(ns, "ci")
    rbac.cluster_role("ar-sub-deploy", [rule(["login"], resources=("hosts/deploy",))])
    rbac.cluster_binding("ar-sub", "ar-sub-deploy", f"system:serviceaccounts:{ns}")
    h.write_conf(rules=[f"map serviceaccount:{ns}/ci deploy", f"map serviceaccount:{ns}/ci robot"],
                 extra=ACCESS + "access_subresource = %u\n", cache_ttl=60)
    expect(h.run("deploy", token), "PAM_SUCCESS", "ok", "allowed")
    # the same token, cached for deploy, is asked about robot afresh: and refused
    d = expect(h.run("robot", token), "PAM_AUTH_ERR", "access_denied", "denied")
    assert d["cache"] == "miss"
    assert [s["spec"]["resourceAttributes"].get("subresource") for s in sar_requests(h)][-2:] == \
        ["deploy", "robot"]


def test_sudo_configuration_asks_for_verb_sudo(h, rbac):
    ns = "ar-sudo"
    token = h.token(ns, "alice")
    rbac.cluster_role("ar-sudo-login", [rule(["login"])])
    rbac.cluster_binding("ar-sudo-login", "ar-sudo-login", f"system:serviceaccounts:{ns}")
    access_conf(h, ns, extra="access_verb = sudo\n")
    expect(h.run("alice", token), "PAM_AUTH_ERR", "access_denied", "denied")
    rbac.cluster_role("ar-sudo", [rule(["sudo"])])
    rbac.cluster_binding("ar-sudo", "ar-sudo", f"system:serviceaccounts:{ns}")
    expect(h.run("alice", token), "PAM_SUCCESS", "ok", "allowed")
    assert sar_requests(h)[-1]["spec"]["resourceAttributes"]["verb"] == "sudo"


def test_star_verbs_and_resources_and_service_template(h, rbac):
    ns = "ar-star"
    token = h.token(ns, "alice")
    rbac.cluster_role("ar-star", [rule(["*"], resources=("*",), names=("k8stoken-test",))])
    rbac.cluster_binding("ar-star", "ar-star", f"system:serviceaccounts:{ns}")
    access_conf(h, ns, extra="access_name = %s\n")
    expect(h.run("alice", token), "PAM_SUCCESS", "ok", "allowed")
    assert sar_requests(h)[-1]["spec"]["resourceAttributes"]["name"] == "k8stoken-test"


def test_local_rules_come_first_and_cost_no_request(h, rbac):
    ns = "ar-rules"
    token = h.token(ns, "alice")
    rbac.cluster_role("ar-rules", [rule(["login"])])
    rbac.cluster_binding("ar-rules", "ar-rules", f"system:serviceaccounts:{ns}")
    h.write_conf(rules=[f"map serviceaccount:{ns}/* {{name}}", f"deny serviceaccount:{ns}/alice"],
                 extra=ACCESS, cache_ttl=60)
    h.api.reset_requests()
    expect(h.run("alice", token), "PAM_AUTH_ERR", "deny_rule", "none")
    expect(h.run("bob", token), "PAM_AUTH_ERR", "deny_rule", "none")
    assert sar_requests(h) == []


def allowed_reply(h, token, ns):
    """A login that RBAC allows, and the SubjectAccessReview it sent (to forge replies to it)."""
    expect(h.run("alice", token), "PAM_SUCCESS", "ok", "allowed")
    return sar_requests(h)[-1]


FORGED_STATUS = {
    "allowed_string": {"allowed": "true"},
    "allowed_number": {"allowed": 1},
    "allowed_null": {"allowed": None},
    "allowed_missing": {"reason": "yes"},
    "allowed_and_denied": {"allowed": True, "denied": True},
    "denied_string": {"allowed": True, "denied": "false"},
    "reason_number": {"allowed": False, "reason": 7},
}


@pytest.mark.parametrize("case", sorted(FORGED_STATUS))
def test_forged_status_is_unavailable(h, rbac, case):
    ns = "ar-forged"
    token = h.token(ns, "alice")
    rbac.cluster_role(f"ar-forged-{case}".replace("_", "-"), [rule(["login"])])
    rbac.cluster_binding(f"ar-forged-{case}".replace("_", "-"), f"ar-forged-{case}".replace("_", "-"),
                         f"system:serviceaccounts:{ns}")
    access_conf(h, ns)
    sent = allowed_reply(h, token, ns)
    body = dict(sent, metadata={}, status=FORGED_STATUS[case])
    h.api.add_fault(path=SAR, status=201, body=json.dumps(body), times=1)
    d = expect(h.run("alice", token), "PAM_AUTHINFO_UNAVAIL", "malformed_reply", "none")
    assert d["detail"] == '"SubjectAccessReview: not a well-formed answer to our request"'


def forged_bodies(sent):
    other = json.loads(json.dumps(sent))
    other["spec"]["user"] = "system:serviceaccount:ar-forged:bob"
    dup = json.dumps(dict(sent, status={"allowed": False})).replace(
        '"status": {', '"status": {"allowed": true, ', 1)
    return {
        "another_subject": json.dumps(dict(other, status={"allowed": True})),
        "duplicate_allowed": dup,
        "wrong_kind": json.dumps(dict(sent, kind="TokenReview", status={"allowed": True})),
        "not_json": "allowed",
        "trailing_garbage": json.dumps(dict(sent, status={"allowed": True})) + "x",
        "status_kind": json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
    }


@pytest.mark.parametrize("case", ["another_subject", "duplicate_allowed", "wrong_kind", "not_json",
                                  "trailing_garbage", "status_kind"])
def test_forged_reply_is_unavailable(h, rbac, case):
    ns = "ar-forged"
    token = h.token(ns, "alice")
    name = f"ar-fr-{case}".replace("_", "-")
    rbac.cluster_role(name, [rule(["login"])])
    rbac.cluster_binding(name, name, f"system:serviceaccounts:{ns}")
    access_conf(h, ns)
    body = forged_bodies(allowed_reply(h, token, ns))[case]
    h.api.add_fault(path=SAR, status=201, body=body, times=1)
    expect(h.run("alice", token), "PAM_AUTHINFO_UNAVAIL", "malformed_reply", "none")


UNAVAILABLE = {
    "403": (dict(status=403), "reviewer_rejected"),
    "500": (dict(status=500), "http_status"),
    "timeout": (dict(latency_ms=(TIMEOUT + 2) * 1000), "timeout"),
    "reset": (dict(reset="before_response"), "transport"),
    "text_plain": (dict(status=201, body="{}", content_type="text/plain"), "malformed_reply"),
}


@pytest.mark.parametrize("case", sorted(UNAVAILABLE))
def test_subjectaccessreview_failure_is_unavailable(h, rbac, case):
    ns = "ar-fail"
    token = h.token(ns, "alice")
    rbac.cluster_role(f"ar-fail-{case}".replace("_", "-"), [rule(["login"])])
    rbac.cluster_binding(f"ar-fail-{case}".replace("_", "-"), f"ar-fail-{case}".replace("_", "-"),
                         f"system:serviceaccounts:{ns}")
    access_conf(h, ns, cache_ttl=60)
    fault, reason = UNAVAILABLE[case]
    h.api.add_fault(path=SAR, times=1, **fault)
    d = expect(h.run("alice", token), "PAM_AUTHINFO_UNAVAIL", reason, "none")
    assert d["detail"].startswith('"SubjectAccessReview: ')
    # nothing was cached: no entry says this login was allowed
    assert [n for n in os.listdir(h.cache_dir) if n.startswith("e-")] == []


def test_one_deadline_for_both_requests(h, rbac):
    ns = "ar-deadline"
    token = h.token(ns, "alice")
    rbac.cluster_role("ar-deadline", [rule(["login"])])
    rbac.cluster_binding("ar-deadline", "ar-deadline", f"system:serviceaccounts:{ns}")
    access_conf(h, ns)
    half = TIMEOUT * 1000 * 6 // 10   # each alone fits in timeout, both together do not
    h.api.add_fault(path=TR, latency_ms=half, times=1)
    h.api.add_fault(path=SAR, latency_ms=half, times=1)
    d = expect(h.run("alice", token), "PAM_AUTHINFO_UNAVAIL", "timeout", "none")
    # the decision's own time (the driver's start-up under valgrind is not the module's)
    assert int(d["ms"]) < DEADLINE_MS + 500, d


def test_selftest_checks_create_subjectaccessreviews(h, rbac):
    h.write_conf(extra="access_review = yes\n")
    tool = h.tool_command(["selftest", "--conf", h.conf, "--helper", h.helper])
    proc = subprocess.run(tool, env=h.tool_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"ok    {h.api.url}: reviewer may create subjectaccessreviews (access_review)" in proc.stdout
    # a reviewer that may create tokenreviews but not subjectaccessreviews
    h.ensure_sa("ar-reviewer", "tr-only")
    rbac.cluster_role("ar-tr-only", [{"apiGroups": ["authentication.k8s.io"],
                                      "resources": ["tokenreviews"], "verbs": ["create"]}])
    ok(kubectl(h.api, "create", "clusterrolebinding", "ar-tr-only", "--clusterrole=ar-tr-only",
               "--serviceaccount=ar-reviewer:tr-only"))
    rbac.made.append(f"{RBAC}/clusterrolebindings/ar-tr-only")
    reviewer = h.api.token_request("ar-reviewer", "tr-only")
    h.secrets.append(reviewer)
    h._write_private(h.reviewer_file, reviewer)
    proc = subprocess.run(tool, env=h.tool_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"FAIL  {h.api.url}: the reviewer may not create subjectaccessreviews" in proc.stdout
    # without access_review the same reviewer passes: the check is asked only when needed
    h.write_conf()
    proc = subprocess.run(tool, env=h.tool_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "subjectaccessreviews" not in proc.stdout, proc.stdout


def test_check_prints_the_access_decision(h, rbac):
    ns = "ar-check"
    token = h.token(ns, "alice")
    access_conf(h, ns, extra="access_subresource = %u\n")
    tool = h.tool_command(["check", "--conf", h.conf, "--user", "alice", "--helper", h.helper])
    proc = subprocess.run(tool, input=token, env=h.tool_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stdout
    assert "decision:        deny (access_denied)\n" in proc.stdout
    assert "access:          denied\n" in proc.stdout
    assert (f"access asked:    verb=login group={GROUP} resource=hosts subresource=alice "
            f"name={HOST}\n") in proc.stdout
    rbac.cluster_role("ar-check", [rule(["login"], resources=("hosts/alice",))])
    rbac.cluster_binding("ar-check", "ar-check", f"system:serviceaccounts:{ns}")
    proc = subprocess.run(tool, input=token, env=h.tool_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout
    assert "decision:        allow (ok)\n" in proc.stdout
    assert "access:          allowed\n" in proc.stdout


def ssar(resource_name, subresource=""):
    """A SelfSubjectAccessReview manifest for login to host resource_name."""
    attrs = {"verb": "login", "group": GROUP, "resource": "hosts", "name": resource_name}
    if subresource:
        attrs["subresource"] = subresource
    return json.dumps({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                       "spec": {"resourceAttributes": attrs}})


def test_kubectl_checks_access_as_the_serviceaccount(h, rbac):
    """How an administrator asks "may ops/alice log in to bastion-1?" with kubectl: a
    SelfSubjectAccessReview sent with --as (impersonation). `kubectl auth can-i` cannot ask it:
    for a resource the server does not serve it sends group "" and resource
    "hosts.pam.k8stoken.io" (docs/kubernetes.md §11), so it answers no whatever RBAC says."""
    ns = "ar-cani"
    h.ensure_sa(ns, "alice")
    rbac.cluster_role("ar-cani", [rule(["login"])])
    rbac.cluster_binding("ar-cani", "ar-cani", f"system:serviceaccounts:{ns}")
    as_alice = f"--as=system:serviceaccount:{ns}:alice"
    create = ["create", "-f", "-", "-o", "jsonpath={.status.allowed}", as_alice]
    assert ok(kubectl(h.api, *create, stdin=ssar(HOST))).stdout == "true"
    assert ok(kubectl(h.api, *create, stdin=ssar("bastion-2"))).stdout == "false"
    other = ["create", "-f", "-", "-o", "jsonpath={.status.allowed}",
             "--as=system:serviceaccount:ar-other-ns:alice"]
    assert ok(kubectl(h.api, *other, stdin=ssar(HOST))).stdout == "false"
    proc = kubectl(h.api, "auth", "can-i", "login", f"hosts.{GROUP}/{HOST}", as_alice)
    assert (proc.returncode, proc.stdout) == (1, "no\n"), proc.stderr
    assert f"the server doesn't have a resource type 'hosts' in group '{GROUP}'" in proc.stderr
    # can-i --as works for what the server serves: the reviewer's own permissions
    for verb_resource, answer in ((("create", "subjectaccessreviews.authorization.k8s.io"), "yes"),
                                  (("create", "tokenreviews.authentication.k8s.io"), "yes"),
                                  (("delete", "clusterrolebindings"), "no")):
        proc = kubectl(h.api, "auth", "can-i", *verb_resource,
                       "--as=system:serviceaccount:pam-k8stoken:reviewer")
        assert proc.stdout == answer + "\n", (verb_resource, proc.stdout, proc.stderr)


@pytest.mark.parametrize("line, why", [
    ("access_name = %x", 'access_name: "%x" holds a \'%\' not followed by h, u, s or %'),
    ("access_verb = lo gin", 'access_verb: "lo gin" holds a space or a character outside printable ASCII'),
    ("access_review = maybe", 'access_review: "maybe" is not yes, no, true or false'),
    ("host_name = a%hb", 'host_name: "a%hb" holds a space, a \'%\' or a character outside printable ASCII'),
])
def test_bad_access_configuration_is_refused(h, line, why):
    h.write_conf(extra=line)
    r = h.run("alice", h.token())
    assert r.code == "PAM_SERVICE_ERR", r
    assert f"configuration refused: {h.conf}:" in r.log and why in r.log, r.log


def test_namespace_template_must_render_a_namespace(h):
    token = h.token("ar-nsbad", "alice")
    h.write_conf(rules=["map serviceaccount:ar-nsbad/* {name}"],
                 extra=ACCESS + "access_namespace = Hosts\n")
    r = h.run("alice", token)
    d = r.decision()
    assert (r.code, d["reason"]) == ("PAM_SERVICE_ERR", "config"), r
    assert d["detail"] == ('"access review: access_namespace does not render a namespace name '
                           '(RFC 1123 label)"')
