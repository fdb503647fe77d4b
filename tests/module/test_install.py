"""make install: the paths of docs/design.md §2 under DESTDIR, modes, and a sample configuration that
parses and is never overwritten."""
import os
import subprocess

from harness import BUILD, ROOT


def install(destdir):
    subprocess.run(["make", "-s", "-C", ROOT, f"BUILD={os.path.relpath(BUILD, ROOT)}", "install",
                    f"DESTDIR={destdir}", "MULTIARCH=x86_64-linux-gnu"], check=True,
                   capture_output=True)


def test_install_layout(tmp_path):
    install(tmp_path)
    expect = {
        "usr/lib/x86_64-linux-gnu/security/pam_k8stoken.so": 0o644,
        "usr/libexec/pam_k8stoken/k8stoken-review": 0o755,
        "usr/sbin/k8stoken": 0o755,
        "usr/bin/k8stoken-askpass": 0o755,
        "usr/bin/kubectl-k8stoken": 0o755,
        "etc/security/pam_k8stoken.conf": 0o644,
    }
    for path, mode in expect.items():
        st = os.stat(tmp_path / path)
        assert st.st_mode & 0o7777 == mode, path
    conf = tmp_path / "etc/security/pam_k8stoken.conf"
    proc = subprocess.run([str(tmp_path / "usr/sbin/k8stoken"), "check", "--conf", str(conf)],
                          input="not-a-token", capture_output=True, text=True)
    assert "configuration refused" not in proc.stderr
    assert "deny (not_jwt)" in proc.stdout


def test_install_keeps_an_existing_configuration(tmp_path):
    conf = tmp_path / "etc/security/pam_k8stoken.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("# the administrator's own\n")
    install(tmp_path)
    assert conf.read_text() == "# the administrator's own\n"
