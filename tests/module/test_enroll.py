"""Enrolling a host and renewing its reviewer token (docs/design.md §9.2), against the test API
server: `kubectl k8stoken enroll` with the real kubectl makes the RBAC objects and a bundle,
`k8stoken enroll --bundle` installs it and a real login works with it; `k8stoken renew` before
and after the threshold, refused, unverifiable, in a read-only directory, and raced; legacy
tokens and client certificates left alone; `kubectl k8stoken unenroll` makes the host's logins
unavailable; the plugin never puts the token into an argv, an environment, a history or a
world-readable file. In the sanitizer and valgrind passes the tool is checked too."""
import json
import os
import re
import shutil
import subprocess
import threading

import pytest

from enrolling import NS, Host, claims, enrolled, expect, host_name, mode

# `k8stoken enroll --bundle` installs the files root:root (and renew, unshare -m, works on them)
INSTALLS_AS_ROOT = pytest.mark.needs_root


def token_requests(h, host):
    path = f"/api/v1/namespaces/{NS}/serviceaccounts/{host.sa}/token"
    return h.api.requests()["counts"].get(path, 0)


# --- kubectl k8stoken enroll and k8stoken enroll --bundle -------------------------------------

@INSTALLS_AS_ROOT
def test_enroll_makes_rbac_and_bundle_and_a_login_works(h):
    host = Host(h, host_name())
    proc = host.enroll()
    assert proc.returncode == 0, proc.stderr
    for line in (f"serviceaccount/{host.sa} created",
                 f"clusterrolebinding/pam-k8stoken:{NS}:{host.sa} created",
                 f"role/{host.sa} created", f"rolebinding/{host.sa} created"):
        assert f"kubectl k8stoken: {line}\n" in proc.stderr
    # RBAC: auth-delegator, and TokenRequest on itself only
    _, crb = h.api.call("GET", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/"
                        f"pam-k8stoken:{NS}:{host.sa}")
    assert crb["roleRef"]["name"] == "system:auth-delegator"
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": host.sa, "namespace": NS}]
    _, role = h.api.call("GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/roles/{host.sa}")
    assert role["rules"] == [{"verbs": ["create"], "apiGroups": [""],
                              "resources": ["serviceaccounts/token"], "resourceNames": [host.sa]}]
    # the bundle: names and modes
    assert mode(host.bundle)[0] == 0o700
    assert sorted(os.listdir(host.bundle)) == ["ca.crt", "pam_k8stoken.conf", "reviewer.token"]
    assert mode(os.path.join(host.bundle, "reviewer.token"))[0] == 0o600
    assert mode(os.path.join(host.bundle, "ca.crt"))[0] == 0o644
    conf = open(os.path.join(host.bundle, "pam_k8stoken.conf")).read()
    for line in (f"server = {h.api.url}", f"ca_file = {host.ca}",
                 f"reviewer_token_file = {host.token_file}", f"audience = ssh://{host.name}"):
        assert line + "\n" in conf
    assert open(os.path.join(host.bundle, "ca.crt")).read() == open(h.api.ca_file).read()
    tok = open(os.path.join(host.bundle, "reviewer.token")).read().strip()
    h.secrets.append(tok)
    assert claims(tok)["sub"] == f"system:serviceaccount:{NS}:{host.sa}"
    assert claims(tok)["exp"] - claims(tok)["iat"] == 720 * 3600
    # installed on the host: root:root, 0600 for the token, then selftest
    proc = host.install()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"installed {host.token_file} (root:root 0600)" in proc.stdout
    assert "1 of 1 servers healthy" in proc.stdout
    assert "WARN" not in proc.stdout
    assert mode(host.token_file) == (0o600, 0, 0)
    assert mode(host.ca) == (0o644, 0, 0)
    assert mode(host.conf) == (0o644, 0, 0)
    host.use_for_logins()
    expect(host.login(), "PAM_SUCCESS", "ok")
    # the review was made with the host's own reviewer token
    reviews = [r for r in h.api.requests()["last"]
               if r["path"] == "/apis/authentication.k8s.io/v1/tokenreviews"]
    assert reviews[-1]["headers"]["authorization"] == "Bearer " + tok


def test_enroll_is_idempotent(h):
    host = Host(h, host_name())
    assert host.enroll().returncode == 0
    proc = host.enroll(output=os.path.join(h.tmp, "second"))
    assert proc.returncode == 0, proc.stderr
    for what in (f"serviceaccount/{host.sa}", f"clusterrolebinding/pam-k8stoken:{NS}:{host.sa}",
                 f"role/{host.sa}", f"rolebinding/{host.sa}"):
        assert f"kubectl k8stoken: {what} exists, kept\n" in proc.stderr
    h.secrets.append(open(os.path.join(h.tmp, "second", "reviewer.token")).read().strip())
    h.secrets.append(open(os.path.join(host.bundle, "reviewer.token")).read().strip())


def test_enroll_refuses_a_non_empty_output_and_bad_names(h):
    host = Host(h, host_name())
    os.makedirs(host.bundle)
    open(os.path.join(host.bundle, "x"), "w").close()
    proc = host.enroll()
    assert (proc.returncode, proc.stderr) == (
        1, f"kubectl k8stoken: --output {host.bundle} exists and is not an empty directory\n")
    proc = Host(h, "Bad_Host").enroll()
    assert proc.returncode == 2
    assert "'Bad_Host' is not a valid host name" in proc.stderr
    proc = host.plugin("enroll", "web-1", "--output", "x", "--audience", "ssh://a b")
    assert proc.returncode == 2 and "--audience 'ssh://a b': only letters" in proc.stderr


@INSTALLS_AS_ROOT
def test_enroll_bundle_never_replaces_without_force(h):
    host = enrolled(h)
    before = open(host.token_file).read()
    proc = host.install()
    assert proc.returncode == 3
    assert f"k8stoken: {host.token_file} exists: not replaced (use --force to replace it)" in proc.stderr
    assert open(host.token_file).read() == before
    proc = host.install("--force")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_enroll_bundle_refuses_a_bad_bundle(h):
    host = Host(h, host_name())
    assert host.enroll().returncode == 0
    h.secrets.append(open(os.path.join(host.bundle, "reviewer.token")).read().strip())
    with open(os.path.join(host.bundle, "reviewer.token"), "w") as f:
        f.write("not a token\n")
    proc = host.install()
    assert proc.returncode == 3
    assert "k8stoken: bundle: reviewer.token is not a ServiceAccount token" in proc.stderr
    assert not os.path.exists(host.conf)


@INSTALLS_AS_ROOT
def test_reviewer_may_request_tokens_for_itself_only(h):
    host = enrolled(h)
    tok = host.token().strip()
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    status, _ = h.api.call("POST", f"/api/v1/namespaces/{NS}/serviceaccounts/{host.sa}/token",
                           body, token=tok)
    assert status == 201
    h.ensure_sa(NS, "reviewer-other")
    status, obj = h.api.call("POST", f"/api/v1/namespaces/{NS}/serviceaccounts/reviewer-other/token",
                             body, token=tok)
    assert status == 403, obj


def fake_ssh_dir(h, traced=False):
    """ssh that runs the remote command here, as sshd would (sh -c), with a k8stoken that
    uses the test's helper; it records its argv. traced: under strace, where neither
    valgrind nor the sanitizers' leak check can run (ptrace), it only keeps what it was
    given on stdin."""
    bin_dir = os.path.join(h.tmp, "bin")
    os.makedirs(bin_dir, exist_ok=True)
    with open(os.path.join(bin_dir, "ssh"), "w") as f:
        f.write(f'#!/bin/sh\nprintf "%s\\n" "$@" > {h.tmp}/ssh-argv\n'
                + (f'cat > {h.tmp}/ssh-stdin\n' if traced else
                   '[ "$1" = -- ] && shift\nshift\nexec sh -c "$*"\n'))
    tool = " ".join(h.tool_command([]))
    with open(os.path.join(bin_dir, "k8stoken"), "w") as f:
        f.write(f'#!/bin/sh\nexec {tool} "$@" --helper {h.helper}\n')
    for name in ("ssh", "k8stoken"):
        os.chmod(os.path.join(bin_dir, name), 0o755)
    return bin_dir


@INSTALLS_AS_ROOT
def test_enroll_over_ssh_installs_and_runs_selftest(h):
    host = Host(h, host_name())
    bin_dir = fake_ssh_dir(h)
    env_path = f"{bin_dir}:/usr/bin:/bin"
    proc = host.plugin("enroll", host.name, "--ssh", "root@" + host.name, "--conf", host.conf,
                       "--ca-path", host.ca, "--token-path", host.token_file, path=env_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 of 1 servers healthy" in proc.stdout
    tok = host.token().strip()
    assert mode(host.token_file) == (0o600, 0, 0)
    argv = open(os.path.join(h.tmp, "ssh-argv")).read()
    assert argv.startswith(f"--\nroot@{host.name}\n") and tok[:40] not in argv
    # a second time: the host refuses to replace its configuration, unless --force
    proc = host.plugin("enroll", host.name, "--ssh", "root@" + host.name, "--conf", host.conf,
                       "--ca-path", host.ca, "--token-path", host.token_file, path=env_path)
    assert proc.returncode == 3
    assert "exists: not replaced (use --force to replace it)" in proc.stderr
    assert host.token().strip() == tok
    proc = host.plugin("enroll", host.name, "--ssh", "root@" + host.name, "--conf", host.conf,
                       "--ca-path", host.ca, "--token-path", host.token_file, "--force",
                       path=env_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert host.token().strip() != tok


# --- the token never leaks from the plugin ----------------------------------------------------

def test_plugin_never_puts_the_token_in_argv_env_history_or_readable_files(h):
    host = Host(h, host_name())
    bin_dir = fake_ssh_dir(h, traced=True)
    trace = os.path.join(h.tmp, "strace")
    proc = host.plugin("enroll", host.name, "--ssh", "root@x", "--conf", host.conf, "--ca-path",
                       host.ca, "--token-path", host.token_file, path=f"{bin_dir}:/usr/bin:/bin",
                       prefix=("strace", "-f", "-v", "-s", "65536", "-e", "trace=execve", "-o", trace))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the bundle went to ssh on its standard input, as a tar stream
    os.makedirs(host.etc)
    subprocess.run(["tar", "-x", "-f", f"{h.tmp}/ssh-stdin", "-C", host.etc], check=True)
    tok = host.token().strip()
    assert mode(f"{h.tmp}/ssh-stdin")[0] == 0o600
    text = open(trace).read()
    assert "execve(" in text and '"kubectl", "create", "token"' in text.replace("/usr/bin/kubectl", "kubectl")
    pieces = [tok[i:i + 16] for i in range(0, len(tok) - 16, 8)]
    assert not [p for p in pieces if p in text], "the token is in an argv or environment"
    assert not [p for p in pieces if p in proc.stdout + proc.stderr]
    os.unlink(trace)
    # no history, and no file that others can read holds it (what is left of the run)
    readable = []
    for top in (h.tmp, host.home):
        for dirpath, _, files in os.walk(top):
            for name in files:
                path = os.path.join(dirpath, name)
                if os.path.islink(path) or not os.stat(path).st_mode & 0o044:
                    continue
                data = open(path, "rb").read().decode(errors="replace")
                if any(p in data for p in pieces):
                    readable.append(path)
    assert readable == []
    assert not [n for n in os.listdir(host.home) if "history" in n]
    # the staging directory is gone
    assert not [n for n in os.listdir(h.tmp) if n.startswith("k8stoken-enroll.")]


# --- k8stoken renew -----------------------------------------------------------------------------

def aged_token(h, host, lifetime, left):
    """A token of the host's reviewer that was issued lifetime - left seconds ago."""
    return h.mint(namespace=NS, name=host.sa, iat_offset=-(lifetime - left), exp_offset=left)


@INSTALLS_AS_ROOT
def test_renew_before_the_threshold_changes_nothing(h):
    host = enrolled(h, "--duration", "1h")
    host.set_token(aged_token(h, host, 3600, 1300))
    before = open(host.token_file).read()
    h.api.reset_requests()
    proc = host.renew()
    assert proc.returncode == 0, proc.stderr
    m = re.fullmatch(f"k8stoken renew: not due sa={NS}/{host.sa} left=(\\d+)s lifetime=3600s\n",
                     proc.stderr)
    assert m and 1200 < int(m.group(1)) <= 1300, proc.stderr
    assert open(host.token_file).read() == before
    assert token_requests(h, host) == 0


@INSTALLS_AS_ROOT
def test_renew_after_the_threshold_replaces_the_token(h):
    host = enrolled(h, "--duration", "1h")
    old = aged_token(h, host, 3600, 1100)
    host.set_token(old)
    os.chmod(host.token_file, 0o400)
    h.api.reset_requests()
    proc = host.renew()
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(f"k8stoken renew: renewed sa={NS}/{host.sa} server={h.api.url} ")
    assert proc.stderr.endswith(" lifetime=3600s\n") and proc.stderr.count("\n") == 1
    new = host.token()
    assert new.endswith("\n") and new.strip() != old
    c = claims(new.strip())
    assert c["sub"] == f"system:serviceaccount:{NS}:{host.sa}" and c["exp"] - c["iat"] == 3600
    assert c["aud"] == claims(old)["aud"]
    assert mode(host.token_file) == (0o400, 0, 0)   # same owner and mode
    assert token_requests(h, host) == 1
    # the TokenRequest went with the old token, the verification with the new one
    sent = [r for r in h.api.requests()["last"] if r["method"] == "POST"]
    assert sent[0]["headers"]["authorization"] == "Bearer " + old
    assert sent[1]["path"] == "/apis/authentication.k8s.io/v1/tokenreviews"
    assert sent[1]["headers"]["authorization"] == "Bearer " + new.strip()
    assert json.loads(sent[0]["body"])["spec"]["expirationSeconds"] == 3600
    assert [n for n in os.listdir(host.etc) if n.startswith(".")] == []
    host.use_for_logins()
    expect(host.login(), "PAM_SUCCESS", "ok")
    # the new token is not due
    proc = host.renew()
    assert proc.returncode == 0 and "k8stoken renew: not due" in proc.stderr


@INSTALLS_AS_ROOT
def test_renew_refused_by_the_server_keeps_the_old_token(h):
    host = enrolled(h, "--duration", "1h")
    host.set_token(aged_token(h, host, 3600, 600))
    before = open(host.token_file).read()
    h.api.add_fault(path=f"/api/v1/namespaces/{NS}/serviceaccounts/{host.sa}/token", status=403)
    proc = host.renew()
    assert proc.returncode == 2
    assert proc.stderr == (f"k8stoken renew: failed sa={NS}/{host.sa} reason=reviewer_rejected "
                           f"http=403 detail=\"HTTP status 403\" server={h.api.url} "
                           "(the old credential is kept)\n")
    assert open(host.token_file).read() == before
    assert [n for n in os.listdir(host.etc) if n.startswith(".")] == []


@INSTALLS_AS_ROOT
def test_renew_keeps_the_old_token_when_the_new_one_fails_its_review(h):
    host = enrolled(h, "--duration", "1h")
    host.set_token(aged_token(h, host, 3600, 600))
    before = open(host.token_file).read()
    h.api.add_fault(path="/apis/authentication.k8s.io/v1/tokenreviews", status=500)
    proc = host.renew()
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"k8stoken renew: failed sa={NS}/{host.sa} reason=http_status "
                                  "http=500 detail=\"the new token failed its TokenReview")
    assert open(host.token_file).read() == before


@INSTALLS_AS_ROOT
def test_renew_in_a_read_only_directory_keeps_the_old_token(h):
    host = enrolled(h, "--duration", "1h")
    host.set_token(aged_token(h, host, 3600, 600))
    before = open(host.token_file).read()
    h.api.reset_requests()
    inner = " ".join(host.h.tool_command(["renew", "--conf", host.conf]))
    proc = subprocess.run(["unshare", "-m", "sh", "-c",
                           f"mount --bind {host.etc} {host.etc} && "
                           f"mount -o remount,bind,ro {host.etc} && exec {inner}"],
                          capture_output=True, text=True, env=h.tool_env(), timeout=120)
    h.captured += [proc.stdout, proc.stderr]
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (f"k8stoken renew: failed sa={NS}/{host.sa} reason=write detail=\"cannot "
                           f"create a temporary file next to {host.token_file}: Read-only file "
                           "system\" server=- (the old credential is kept)\n")
    assert open(host.token_file).read() == before
    assert token_requests(h, host) == 0   # nothing was minted for nothing


@INSTALLS_AS_ROOT
def test_two_renewals_racing_renew_once(h):
    host = enrolled(h, "--duration", "1h")
    host.set_token(aged_token(h, host, 3600, 600))
    h.api.reset_requests()
    h.api.add_fault(path=f"/api/v1/namespaces/{NS}/serviceaccounts/{host.sa}/token",
                    latency_ms=1000, times=1)
    results = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, host.renew(name=f"r{i}")))
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = sorted(results[i].stderr.split(" sa=")[0] for i in range(2))
    assert lines == ["k8stoken renew: not due", "k8stoken renew: renewed"], results
    assert [results[i].returncode for i in range(2)] == [0, 0]
    assert token_requests(h, host) == 1
    host.token()
    host.use_for_logins()
    expect(host.login(), "PAM_SUCCESS", "ok")


@INSTALLS_AS_ROOT
def test_renew_leaves_legacy_tokens_and_client_certificates_alone(h):
    host = enrolled(h)
    legacy = h.mint(namespace=NS, name=host.sa, legacy=True)
    host.set_token(legacy)
    proc = host.renew()
    assert (proc.returncode, proc.stderr) == (0, (
        f"k8stoken renew: skipped sa={NS}/{host.sa} reason=no_expiry (a legacy token that never "
        "expires is left alone)\n"))
    assert open(host.token_file).read() == legacy + "\n"
    with open(host.conf) as f:
        text = f.read().replace(f"reviewer_token_file = {host.token_file}\n",
                                f"client_cert_file = {h.api.reviewer_client_cert}\n"
                                f"client_key_file = {h.tmp}/client.key\n")
    shutil.copy(h.api.reviewer_client_key, f"{h.tmp}/client.key")
    os.chmod(f"{h.tmp}/client.key", 0o600)
    with open(host.conf, "w") as f:
        f.write(text)
    proc = host.renew()
    assert (proc.returncode, proc.stderr) == (0, (
        "k8stoken renew: skipped reason=client_certificate (a client certificate is renewed by "
        "whoever issued it)\n"))


@INSTALLS_AS_ROOT
def test_renew_of_an_expired_token_fails(h):
    host = enrolled(h)
    host.set_token(h.mint(namespace=NS, name=host.sa, iat_offset=-4000, exp_offset=-400))
    proc = host.renew()
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"k8stoken renew: failed sa={NS}/{host.sa} reason=expired ")


@INSTALLS_AS_ROOT
def test_selftest_warns_when_the_credential_expires_within_a_day(h):
    host = enrolled(h, "--duration", "20h")
    proc = host.tool("selftest", "--conf", host.conf, "--helper", h.helper)
    assert proc.returncode == 0, proc.stdout
    assert (f"WARN  {host.token_file}: the reviewer token expires in 19 h 59 min: is "
            "k8stoken-renew.timer running? (k8stoken renew)") in proc.stdout \
        or f"WARN  {host.token_file}: the reviewer token expires in 20 h 0 min" in proc.stdout
    host.set_token(aged_token(h, host, 72 * 3600, 25 * 3600))
    proc = host.tool("selftest", "--conf", host.conf, "--helper", h.helper)
    assert proc.returncode == 0 and "WARN" not in proc.stdout, proc.stdout


# --- kubectl k8stoken unenroll --------------------------------------------------------------------

@INSTALLS_AS_ROOT
def test_unenroll_makes_the_hosts_logins_unavailable(h):
    host = enrolled(h)
    host.use_for_logins()
    expect(host.login(), "PAM_SUCCESS", "ok")
    proc = host.plugin("unenroll", host.name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.endswith(f"kubectl k8stoken: {host.name} unenrolled: its reviewer token no "
                                "longer works, its logins fail as unavailable\n")
    for path in (f"/api/v1/namespaces/{NS}/serviceaccounts/{host.sa}",
                 f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/roles/{host.sa}",
                 f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/rolebindings/{host.sa}",
                 f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/pam-k8stoken:{NS}:{host.sa}"):
        assert h.api.call("GET", path)[0] == 404, path
    expect(host.login(), "PAM_AUTHINFO_UNAVAIL", "reviewer_rejected")
    # and the renewal cannot bring it back
    proc = host.renew("--force")
    assert proc.returncode == 2 and "reason=reviewer_rejected http=401" in proc.stderr
    # unenrolling again is fine
    assert host.plugin("unenroll", host.name).returncode == 0
