"""The ssh path once against a real kube-apiserver: the real sshd (pam_wrapper, nss_wrapper,
tests/lib/sshd.py) with the module in its PAM stack, the real ssh client, and k8stoken-askpass
answering the prompts with a token the real server minted through `kubectl create token`."""
import os
import tempfile

import sshd as sshd_mod
from harness import AUDIENCE, BUILD
from test_real_cluster import kubectl

ASKPASS = os.path.join(BUILD, "k8stoken-askpass")


def test_ssh_login_with_a_token_from_the_real_cluster(kube, h):
    assert os.geteuid() == 0, "sshd runs as root"
    tmp = tempfile.mkdtemp(prefix="kt-kssh-")
    os.chmod(tmp, 0o755)
    shim = sshd_mod.build_shim(tmp)
    h.ensure_sa("pam", "pam-user")
    token = kubectl(kube, "create", "token", "pam-user", "-n", "pam", f"--audience={AUDIENCE}",
                    "--duration=10m").stdout.strip()
    h.secrets.append(token)
    token_file = os.path.join(tmp, "token")
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    with sshd_mod.Sshd(h.module_line(), tmp=os.path.join(tmp, "sshd"), shim=shim) as sshd:
        mark = sshd.mark()
        r = sshd.run_ssh("alice", askpass=ASKPASS, env={"K8STOKEN_FILE": token_file})
        logs = sshd.logs_since(mark)
    h.captured += [r.stdout, r.stderr, *logs]
    assert r.returncode == 0, (r, logs)
    assert "K8S=pam/pam-user" in r.stdout, r.stdout
    decisions = sshd_mod.Sshd.decisions(logs[2]) or sshd_mod.Sshd.decisions(logs[1])
    assert len(decisions) == 1, logs
    d = decisions[0]
    assert (d["verdict"], d["reason"], d["sa"], d["user"], d["server"]) == (
        "allow", "ok", "pam/pam-user", "alice", kube.url), d
