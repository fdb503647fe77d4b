#!/usr/bin/python3
"""make demo: the whole job once, on the embedded default (the local test API server);
make demo-kube (KT_DEMO_KUBE=1): the same against a real kube-apiserver (tests/kube).

Starts the test Kubernetes API server, creates a ServiceAccount and mints a real
token for it, then runs real PAM authentications (libpam, pam_start_confdir) of
the local account "alice" with pam_k8stoken: the right token is allowed, a token
of another ServiceAccount and a forged token are denied. Shows each decision and
the module's log line (a second login with the same token comes from the cache), then
the same decision through `k8stoken check`.
"""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import ktest
from harness import AUDIENCE, Harness


def show(title, result):
    print(f"\n--- {title}")
    print(f"pam_authenticate: {result.code}")
    for line in result.log_lines():
        print(f"log: {line}")
    for name, value in sorted(result.env.items()):
        print(f"session env: {name}={value}")


def forge(h, api, kube):
    """A token of pam/pam-user with the right claims, signed by a key the cluster does not
    trust."""
    if not kube:
        return h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], key="other")
    import time
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    token = jwt.encode({"aud": [AUDIENCE], "exp": now + 600, "iat": now, "nbf": now,
                        "iss": "https://kubernetes.default.svc.cluster.local",
                        "sub": "system:serviceaccount:pam:pam-user",
                        "kubernetes.io": {"namespace": "pam",
                                          "serviceaccount": {"name": "pam-user", "uid": "x"}}},
                       key, algorithm="RS256", headers={"kid": "forged"})
    h.secrets.append(token)
    return token


def main():
    subprocess.run(["make", "-s", "-C", ROOT, "all", "test-programs"], check=True)
    tmp = tempfile.mkdtemp(prefix="k8stoken-demo-")
    kube = os.environ.get("KT_DEMO_KUBE") == "1"
    if kube:
        import cluster
        api = cluster.KubeCluster(os.path.join(tmp, "kube"))
    else:
        api = ktest.ApiServer(os.path.join(tmp, "apiserver"))
    try:
        api.start()
        print(f"{'kube-apiserver' if kube else 'test API server'}: {api.url} "
              f"(state in {api.state_dir})")
        h = Harness(api, tmp)
        h.write_conf(rules=["map serviceaccount:pam/pam-user alice",
                            "deny serviceaccount:kube-system/*"], cache_ttl=30,
                     local_verify=None)   # the product's default: auto
        print(f"config: {h.conf}\n" + "".join("  " + l for l in open(h.conf)
                                            if not l.startswith("reviewer")))
        good = h.token("pam", "pam-user", seconds=600)
        other = h.token("pam", "someone-else", seconds=600)
        forged = forge(h, api, kube)
        print(f"minted a {len(good)}-character token for ServiceAccount pam/pam-user, "
              f"audience {AUDIENCE}, 10 minutes")

        show("alice presents the token of pam/pam-user (mapped to alice)", h.run("alice", good))
        show("alice logs in again with the same token (answered from the cache)",
             h.run("alice", good))
        show("alice presents the token of pam/someone-else (not mapped)", h.run("alice", other))
        show("alice presents a token signed by a key the cluster does not have (refused on the "
             "host by the cluster's key set: no TokenReview)", h.run("alice", forged))
        show("alice types a password instead of a token (not sent anywhere; the module "
             "answers PAM_AUTH_ERR, PAM_IGNORE only with ignore_non_token)",
             h.run("alice", "hunter2"))

        print("\n--- the same first decision through the admin tool: "
              "k8stoken check --user alice")
        proc = subprocess.run([os.path.join(ROOT, "build", "k8stoken"), "check", "--conf", h.conf,
                               "--user", "alice", "--helper",
                               os.path.join(ROOT, "build", "k8stoken-review")],
                              input=good, text=True, capture_output=True,
                              env=h.driver_env())
        print(proc.stdout + proc.stderr, end="")
        print(f"(exit status {proc.returncode})")
    finally:
        api.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
