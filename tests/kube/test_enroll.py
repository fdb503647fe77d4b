"""Enrolling a host and renewing its reviewer token (docs/design.md §9.2) against a real
kube-apiserver: `kubectl k8stoken enroll` with the real kubectl (the CA from the kubeconfig's
certificate-authority file), `k8stoken enroll --bundle`, a real login with the bundle; `k8stoken
renew` before and after the threshold (a token signed with the cluster's key, issued long ago),
raced, and refused once the Role is gone; `kubectl k8stoken unenroll` makes the host's logins
unavailable once kube-apiserver's 10 s authentication cache has let go."""
import threading
import time

import cluster
from enrolling import NS, Host, claims, enrolled, expect, host_name, mode
from test_real_cluster import kubectl, signed_token, until_denied


def aged(kube, host, lifetime, left):
    now = int(time.time())
    return signed_token(kube, NS, host.sa, iat=now - (lifetime - left), exp=now + left,
                        audiences=(cluster.ISSUER,))


def test_enroll_install_login_and_renew(kube, h):
    host = Host(h, host_name())
    proc = host.enroll("--duration", "1h")
    assert proc.returncode == 0, proc.stderr
    proc = host.install()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 of 1 servers healthy" in proc.stdout
    assert open(host.ca).read() == open(kube.ca_file).read()
    tok = host.token().strip()
    c = claims(tok)
    assert (c["sub"], c["exp"] - c["iat"]) == (f"system:serviceaccount:{NS}:{host.sa}", 3600)
    host.use_for_logins()
    expect(host.login(), "PAM_SUCCESS", "ok")
    # not due: a third or more of the lifetime left
    proc = host.renew()
    assert proc.returncode == 0 and proc.stderr.startswith(
        f"k8stoken renew: not due sa={NS}/{host.sa} "), proc.stderr
    assert host.token().strip() == tok
    # due: issued 2500 s of 3600 s ago
    old = aged(kube, host, 3600, 1100)
    host.set_token(old)
    proc = host.renew()
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(f"k8stoken renew: renewed sa={NS}/{host.sa} server={kube.url} ")
    assert proc.stderr.endswith(" lifetime=3600s\n")
    new = host.token().strip()
    assert new != old and claims(new)["exp"] - claims(new)["iat"] == 3600
    assert mode(host.token_file) == (0o600, 0, 0)
    expect(host.login(), "PAM_SUCCESS", "ok")
    proc = host.tool("selftest", "--conf", host.conf, "--helper", h.helper)
    assert proc.returncode == 0, proc.stdout
    # a one-hour token always ends within a day
    assert f"WARN  {host.token_file}: the reviewer token expires in " in proc.stdout


def test_two_renewals_racing_renew_once(kube, h):
    host = enrolled(h, "--duration", "1h")
    host.set_token(aged(kube, host, 3600, 600))
    results = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, host.renew(name=f"r{i}")))
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results[i].stderr.split(" sa=")[0] for i in range(2)) == [
        "k8stoken renew: not due", "k8stoken renew: renewed"], results
    host.token()
    host.use_for_logins()
    expect(host.login(), "PAM_SUCCESS", "ok")


def test_renew_refused_without_the_role_keeps_the_old_token(kube, h):
    host = enrolled(h, "--duration", "1h")
    can_i = ("auth", "can-i", "create", f"serviceaccounts/{host.sa}", "--subresource=token",
             "-n", NS, f"--as=system:serviceaccount:{NS}:{host.sa}")
    assert kubectl(kube, *can_i, check=False).stdout.strip() == "yes"
    kubectl(kube, "delete", "role", host.sa, "-n", NS)
    deadline = time.monotonic() + 30   # the RBAC authorizer reads roles from an informer
    while not kubectl(kube, *can_i, check=False).stdout.startswith("no"):
        assert time.monotonic() < deadline, kubectl(kube, *can_i, check=False)
        time.sleep(0.5)
    before = open(host.token_file).read()
    proc = host.renew("--force")
    assert proc.returncode == 2
    assert proc.stderr == (f"k8stoken renew: failed sa={NS}/{host.sa} reason=reviewer_rejected "
                           f"http=403 detail=\"HTTP status 403\" server={kube.url} "
                           "(the old credential is kept)\n")
    assert open(host.token_file).read() == before


def test_unenroll_makes_the_hosts_logins_unavailable(kube, h):
    host = enrolled(h)
    host.use_for_logins()
    token = h.token(audiences=(f"ssh://{host.name}",), seconds=3600)
    expect(h.run("alice", token), "PAM_SUCCESS", "ok")
    proc = host.plugin("unenroll", host.name)
    assert proc.returncode == 0, proc.stderr
    started = time.monotonic()
    r, seconds = until_denied(h, "alice", token, started, 60)
    print(f"logins unavailable {seconds:.1f} s after unenroll")
    expect(r, "PAM_AUTHINFO_UNAVAIL", "reviewer_rejected")
    assert kubectl(kube, "get", "serviceaccount", host.sa, "-n", NS, check=False).returncode == 1
