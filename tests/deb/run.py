#!/usr/bin/python3
"""The Debian package test (`make deb-test`; CI, as root, after `make check`).

1. `make deb` (dpkg-buildpackage -b -us -uc, with the unit tests as dh_auto_test);
2. the package's contents, conffiles, no lintian overrides;
3. lintian --fail-on error,warning --pedantic on the .changes, run as the user nobody;
4. dpkg -i: the pam-auth-update profile is registered and listed, /etc/pam.d is unchanged,
   k8stoken-renew.timer is enabled;
5. hardening-check on the installed module, helper, tool and askpass; man --warnings -l;
6. `pam-auth-update --enable k8stoken` inside a private mount namespace (over copies of
   /etc/pam.d, /var/lib/pam and the debconf database; the machine's own files are never
   touched) and the common-auth it writes;
7. /etc/security/pam_k8stoken.conf pointed at the test API server; `k8stoken selftest` and
   `k8stoken check`; real sshd logins (tests/lib/sshd.py) through the INSTALLED module by its
   absolute path, without conf= or helper=, so the configuration path and the helper path
   compiled into the module are the ones used; keyboard-interactive with the installed
   k8stoken-askpass, and the password method through the common-auth stack of step 6;
8. dpkg -P: /etc/pam.d byte-identical to before, no file of the package left.

Refuses to run (and touches nothing) when libpam-k8stoken or any of its files is already on
the machine. Ends with "N passed, N failed". --no-build: use the .deb files in build/deb.
"""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from harness import Harness, ktest
import sshd as sshd_mod

PKG = "libpam-k8stoken"
VERSION = "0.1.0"
DEB_DIR = os.path.join(ROOT, "build", "deb")
MULTIARCH = sshd_mod.MULTIARCH  # dpkg-architecture, else gcc -print-multiarch; never a guess
ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                      text=True).stdout.strip()
MODULE = f"/usr/lib/{MULTIARCH}/security/pam_k8stoken.so"
HELPER = "/usr/libexec/pam_k8stoken/k8stoken-review"
TOOL = "/usr/sbin/k8stoken"
ASKPASS = "/usr/bin/k8stoken-askpass"
PLUGIN = "/usr/bin/kubectl-k8stoken"
CONF = "/etc/security/pam_k8stoken.conf"
PROFILE = "/usr/share/pam-configs/k8stoken"
TMPFILES = "/usr/lib/tmpfiles.d/libpam-k8stoken.conf"
RENEW_UNITS = ["/lib/systemd/system/k8stoken-renew.service", "/lib/systemd/system/k8stoken-renew.timer"]
# what `deb-systemd-helper enable` (dh_installsystemd) leaves for an enabled timer
TIMER_WANTS = "/etc/systemd/system/timers.target.wants/k8stoken-renew.timer"
CACHE = "/run/pam_k8stoken"
MANPAGES = ["/usr/share/man/man8/pam_k8stoken.8.gz", "/usr/share/man/man5/pam_k8stoken.conf.5.gz",
            "/usr/share/man/man8/k8stoken.8.gz", "/usr/share/man/man1/k8stoken-askpass.1.gz",
            "/usr/share/man/man1/kubectl-k8stoken.1.gz"]
# path -> mode of what the package must ship
EXPECTED = {MODULE: 0o644, HELPER: 0o755, TOOL: 0o755, ASKPASS: 0o755, PLUGIN: 0o755,
            CONF: 0o644, PROFILE: 0o644, TMPFILES: 0o644, **{u: 0o644 for u in RENEW_UNITS},
            f"/usr/share/doc/{PKG}/copyright": 0o644, **{m: 0o644 for m in MANPAGES}}
BINARIES = [MODULE, HELPER, TOOL, ASKPASS]

counts = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    counts["passed" if ok else "failed"] += 1
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f"\n     {detail}" if detail and not ok else ""),
          flush=True)
    return ok


def run(cmd, **kw):
    if "stderr" in kw:
        kw.setdefault("stdout", subprocess.PIPE)
    else:
        kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("errors", "replace")
    return subprocess.run(cmd, **kw)


def indent(text, n=400):
    text = text.strip()
    if len(text) > n * 10:
        text = "...\n" + text[-n * 10:]
    return text.replace("\n", "\n     ")


def pkg_status():
    r = run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", PKG])
    return r.stdout.strip() if r.returncode == 0 else "not-known"


def tree_digest(top):
    """{relative path: (type, mode, sha256 or link target)} of everything below top."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, top)
            if os.path.islink(path):
                out[rel] = ("link", st.st_mode, os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ("dir", st.st_mode, None)
            else:
                with open(path, "rb") as f:
                    out[rel] = ("file", st.st_mode, hashlib.sha256(f.read()).hexdigest())
    return out


def tree_diff(before, after):
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return ", ".join(changed[:20])


def debconf_profiles():
    """(enabled profiles, listed profile names, listed profile titles) from debconf's database."""
    text = open("/var/cache/debconf/config.dat", errors="replace").read()
    block = re.search(r"^Name: libpam-runtime/profiles\n(.*?)(?:\n\n|\Z)", text, re.M | re.S)
    block = block.group(1) if block else ""
    value = re.search(r"^Value: (.*)$", block, re.M)
    names = re.search(r"^ profile_names = (.*)$", block, re.M)
    titles = re.search(r"^ profiles = (.*)$", block, re.M)
    split = lambda m: [x.strip() for x in m.group(1).split(", ")] if m else []  # noqa: E731
    return split(value), split(names), split(titles)


def deb_files():
    debs = {n: os.path.join(DEB_DIR, n) for n in os.listdir(DEB_DIR)} if os.path.isdir(DEB_DIR) else {}
    return (debs.get(f"{PKG}_{VERSION}_{ARCH}.deb"), debs.get(f"{PKG}_{VERSION}_{ARCH}.changes"))


# --- steps --------------------------------------------------------------------------------

def preconditions():
    if os.geteuid() != 0:
        print("the package test installs and purges a package: run it as root")
        return False
    status = pkg_status()
    present = [p for p in list(EXPECTED) + [CACHE] if os.path.lexists(p)]
    ok = status in ("not-known", "un ") and not present
    check("machine is clean before the test (package not installed, none of its files present)",
          ok, f"dpkg status {status!r}; present: {present}")
    return ok


def build(no_build):
    if no_build and all(deb_files()):
        print("     (--no-build: using build/deb)")
        return True
    start = time.monotonic()
    r = run(["make", "-s", "deb"], cwd=ROOT, stderr=subprocess.STDOUT)
    deb, changes = deb_files()
    ok = r.returncode == 0 and deb and changes
    check(f"make deb: dpkg-buildpackage -b -us -uc ({time.monotonic() - start:.0f} s)", ok,
          indent(r.stdout))
    if ok:
        check("dh_auto_test ran the cmocka unit tests during the build",
              "== build/tests/test_" in r.stdout and "[  PASSED  ]" in r.stdout
              and "[  FAILED  ]" not in r.stdout, indent(r.stdout))
    return ok


def contents(deb):
    listing = run(["dpkg-deb", "-c", deb]).stdout
    modes = {}
    for line in listing.splitlines():
        f = line.split()
        path = f[-1][1:] if f[-1].startswith("./") else f[-1]
        if f[0].startswith("-"):
            perm = sum(0o400 >> i if c != "-" else 0 for i, c in enumerate(f[0][1:10]))
            modes[path.rstrip("/")] = (perm, f[1])
    bad = [f"{p}: {oct(modes[p][0]) if p in modes else 'missing'}"
           for p, m in EXPECTED.items() if p not in modes or modes[p][0] != m]
    check("the .deb ships module, helper, tool, askpass, plugin, conf, profile, tmpfiles, "
          "copyright and the five man pages, with their modes", not bad, "; ".join(bad))
    check("every file is owned by root/root",
          all(o == "root/root" for _, o in modes.values()), indent(listing))
    check("no lintian overrides (source or binary)",
          not any("lintian" in p for p in modes)
          and not [n for n in os.listdir(os.path.join(ROOT, "debian")) if "lintian" in n])
    tmp = tempfile.mkdtemp(prefix="kt-deb-ctl-")
    try:
        run(["dpkg-deb", "-e", deb, tmp], check=True)
        conffiles = open(os.path.join(tmp, "conffiles")).read().split()
        check("conffiles: /etc/security/pam_k8stoken.conf only", conffiles == [CONF], conffiles)
        control = open(os.path.join(tmp, "control")).read()
        check("Depends on libpam-runtime (pam-auth-update)",
              re.search(r"^Depends:.*\blibpam-runtime\b", control, re.M) is not None, control)
        for script, needle in (("postinst", "pam-auth-update --package"),
                               ("prerm", "pam-auth-update --package --remove k8stoken")):
            text = open(os.path.join(tmp, script)).read()
            check(f"{script} calls `{needle}` guarded by its action",
                  needle in text and re.search(r'if \[ "\$1" = (configure|remove) \]', text),
                  text)
        x = os.path.join(tmp, "x")
        run(["dpkg-deb", "-x", deb, x], check=True)
        shipped = open(os.path.join(x, CONF.lstrip("/")), "rb").read()
        check("the shipped configuration is conf/pam_k8stoken.conf",
              shipped == open(os.path.join(ROOT, "conf", "pam_k8stoken.conf"), "rb").read())
        profile = open(os.path.join(x, PROFILE.lstrip("/"))).read()
        check("the pam-auth-update profile says Default: no",
              re.search(r"^Default: no$", profile, re.M) is not None, profile)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def lintian(changes):
    """lintian as nobody, on copies in a directory nobody can read."""
    tmp = tempfile.mkdtemp(prefix="kt-lintian-")
    try:
        os.chmod(tmp, 0o755)
        for name in os.listdir(DEB_DIR):
            if name.endswith((".deb", ".changes", ".buildinfo")):
                shutil.copy(os.path.join(DEB_DIR, name), tmp)
                os.chmod(os.path.join(tmp, name), 0o644)
        cmd = ["runuser", "-u", "nobody", "--", "env", f"HOME={tmp}", "lintian",
               "--fail-on", "error,warning", "--pedantic", "--display-info",
               os.path.join(tmp, os.path.basename(changes))]
        r = run(cmd, cwd=tmp)
        print("     $ " + " ".join(cmd[5:]))
        print("     " + (indent(r.stdout + r.stderr) or "(no output)"))
        check("lintian --fail-on error,warning (as nobody)", r.returncode == 0
              and not re.search(r"^[EW]: ", r.stdout, re.M), indent(r.stdout + r.stderr))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def installed_checks():
    r = run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", PKG])
    check("package is installed", r.stdout.strip() == "ii", r.stdout)
    bad = []
    for path, mode in EXPECTED.items():
        try:
            st = os.stat(path)
            if st.st_mode & 0o7777 != mode or st.st_uid != 0 or st.st_gid != 0:
                bad.append(f"{path} {oct(st.st_mode)} {st.st_uid}:{st.st_gid}")
        except OSError as e:
            bad.append(f"{path}: {e}")
    check("installed files in place, root-owned, with their modes", not bad, "; ".join(bad))
    check("k8stoken-renew.timer is enabled on installation",
          os.path.islink(TIMER_WANTS) and os.readlink(TIMER_WANTS).endswith("/k8stoken-renew.timer"),
          TIMER_WANTS)
    try:
        st = os.lstat(CACHE)
        ok = os.path.isdir(CACHE) and not os.path.islink(CACHE) and st.st_uid == 0 \
            and st.st_mode & 0o7777 == 0o700
        check(f"tmpfiles.d created {CACHE} root 0700", ok, oct(st.st_mode))
    except OSError as e:
        check(f"tmpfiles.d created {CACHE} root 0700", False, str(e))
    for binary in BINARIES:
        # Debian 12's crti.o/crtn.o carry no x86 IBT/SHSTK property, so the linker drops it
        # from every binary (Debian's own sshd and pam_unix.so fail the same test): the
        # "Control flow integrity" test cannot pass on Debian 12 and is skipped; the code is
        # built with -fcf-protection all the same.
        r = run(["hardening-check", "--nocfprotection", binary])
        print("     " + indent(r.stdout + r.stderr))
        check(f"hardening-check --nocfprotection {binary}", r.returncode == 0,
              indent(r.stdout + r.stderr))
    for page in MANPAGES:
        r = run(["man", "--warnings", "-E", "UTF-8", "-l", page],
                env={"PATH": "/usr/bin:/bin", "MANWIDTH": "80", "LANG": "C.UTF-8"})
        check(f"man --warnings -l {page}: no warnings", r.returncode == 0 and not r.stderr.strip(),
              indent(r.stderr))


NAMESPACE_SCRIPT = r"""
set -e
mount --make-rprivate /
mount -t tmpfs -o mode=0700 kt-pam "$1"
for d in /etc/pam.d /var/lib/pam /var/cache/debconf; do
	mkdir -p "$1$d"; cp -a "$d/." "$1$d/"; mount --bind "$1$d" "$d"
done
DEBIAN_FRONTEND=noninteractive pam-auth-update --enable k8stoken >&2
cat /etc/pam.d/common-auth
"""


def profile_enabled_stack(tmp):
    """pam-auth-update --enable k8stoken in a private mount namespace; returns common-auth."""
    work = os.path.join(tmp, "ns")
    os.makedirs(work)
    r = run(["unshare", "--mount", "--propagation", "private", "sh", "-c", NAMESPACE_SCRIPT,
             "sh", work])
    if not check("pam-auth-update --enable k8stoken (private mount namespace)", r.returncode == 0,
                 indent(r.stderr)):
        return None
    # "auth [a=b c=d] module args": the control may contain spaces
    parsed = []
    for line in r.stdout.splitlines():
        m = re.match(r"^auth\s+(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)$", line)
        if m:
            parsed.append(m.groups())
    names = [os.path.basename(p[1]) for p in parsed]
    ok = ("pam_k8stoken.so" in names and "pam_unix.so" in names
          and names.index("pam_unix.so") < names.index("pam_k8stoken.so")
          and names[names.index("pam_k8stoken.so") + 1] == "pam_deny.so")
    if ok:
        kt = parsed[names.index("pam_k8stoken.so")]
        unix = parsed[names.index("pam_unix.so")]
        jump = lambda ctl: int(re.search(r"success=(\d+)", ctl).group(1))  # noqa: E731
        skip_to = names.index("pam_k8stoken.so") + 1 + jump(kt[0])
        ok = (kt[2] == "use_first_pass" and "default=ignore" in kt[0]
              and names[skip_to] == "pam_permit.so"
              and names.index("pam_unix.so") + 1 + jump(unix[0]) == skip_to)
    check("common-auth: pam_k8stoken.so use_first_pass after pam_unix, success jumps past "
          "pam_deny to pam_permit", ok, indent(r.stdout))
    return parsed if ok else None


def write_conf(api, reviewer_file):
    text = "\n".join([
        f"server = {api.url}",
        f"ca_file = {api.ca_file}",
        f"reviewer_token_file = {reviewer_file}",
        "audience = pam-test",
        "map serviceaccount:pam/pam-user alice",
        "deny serviceaccount:kube-system/*",
    ]) + "\n"
    with open(CONF, "w") as f:  # the package's conffile: removed by dpkg -P
        f.write(text)
    os.chmod(CONF, 0o644)


def logins(tmp, stack):
    api = ktest.ApiServer().start(os.path.join(tmp, "api"), key="rs256-2048")
    sshd = None
    try:
        os.makedirs(os.path.join(tmp, "h"))
        h = Harness(api, os.path.join(tmp, "h"))
        write_conf(api, h.reviewer_file)
        token = h.token("pam", "pam-user")
        other = h.token("pam", "somebody-else")
        checked = h.token("pam", "pam-user")  # its own token: the cache must not see `token`
        nss = {"NSS_WRAPPER_PASSWD": h.passwd, "NSS_WRAPPER_GROUP": h.group,
               "LD_PRELOAD": "libnss_wrapper.so", "PATH": "/usr/bin:/bin"}

        r = run([TOOL, "selftest"], env={"PATH": "/usr/bin:/bin"})
        h.captured += [r.stdout, r.stderr]
        check("k8stoken selftest (installed tool, default configuration, compiled-in helper)",
              r.returncode == 0, indent(r.stdout + r.stderr))
        r = run([TOOL, "check", "--user", "alice"], input=checked, env=nss)
        h.captured += [r.stdout, r.stderr]
        check("k8stoken check --user alice < token: allowed", r.returncode == 0,
              indent(r.stdout + r.stderr))

        shim = sshd_mod.build_shim(tmp)
        sshd = sshd_mod.Sshd(f"{MODULE} debug", tmp=os.path.join(tmp, "sshd"), shim=shim)
        sshd.start()

        def token_file(tok, n):
            path = os.path.join(tmp, f"token-{n}")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(tok)
            return path

        def ssh(tok, n):
            mark = sshd.mark()
            r = sshd.run_ssh("alice", askpass=ASKPASS, env={"K8STOKEN_FILE": token_file(tok, n)})
            logs = sshd.logs_since(mark)
            h.captured += [r.stdout, r.stderr, *logs]
            return r, sshd_mod.Sshd.decisions(logs[2]), sshd_mod.Sshd.module_lines(logs[2])

        r, dec, lines = ssh(token, 1)
        check("ssh alice (keyboard-interactive, installed k8stoken-askpass, real token) through "
              f"{MODULE}: logged in", r.returncode == 0 and "K8S=pam/pam-user" in r.stdout,
              indent(f"rc={r.returncode} {r.stdout} {r.stderr}\n{sshd.log()[-3000:]}"))
        check("decision: allow user=alice sa=pam/pam-user cache=miss",
              len(dec) == 1 and dec[0]["verdict"] == "allow" and dec[0].get("user") == "alice"
              and dec[0].get("sa") == "pam/pam-user" and dec[0].get("cache") == "miss", dec)
        debug = "\n".join(lines)
        check("the module used /etc/security/pam_k8stoken.conf and the installed helper",
              CONF in debug and HELPER in debug, indent(debug))
        r, dec, _ = ssh(token, 2)
        check(f"second login within cache_ttl: cache=hit ({CACHE})",
              r.returncode == 0 and len(dec) == 1 and dec[0].get("cache") == "hit", dec)
        r, dec, _ = ssh(other, 3)
        check("a token of an unmapped ServiceAccount is refused (reason=not_mapped)",
              r.returncode != 0 and len(dec) == 1 and dec[0]["verdict"] == "deny"
              and dec[0].get("reason") == "not_mapped", dec)

        if stack:
            # the auth lines pam-auth-update wrote, module names made absolute (pam_wrapper)
            auth = [f"auth {ctl} {mod if mod.startswith('/') else f'/usr/lib/{MULTIARCH}/security/' + mod} {args}".rstrip()
                    for ctl, mod, args in stack]
            sshd.write_service(stack=auth + [
                f"account required /usr/lib/{MULTIARCH}/security/pam_permit.so",
                f"password required /usr/lib/{MULTIARCH}/security/pam_deny.so",
                f"session required /usr/lib/{MULTIARCH}/security/pam_permit.so"])
            h.api.reset_requests()
            fresh = h.token("pam", "pam-user")
            for n, (tok, want) in enumerate(((fresh, True), ("not-a-token-password", False))):
                mark = sshd.mark()
                path = token_file(tok, 10 + n)
                r = run(["sshpass", "-f", path] + sshd.ssh_argv(
                    "alice", "echo K8S=$K8S_SERVICEACCOUNT", method="password"),
                    env={"PATH": "/usr/bin:/bin", "HOME": tmp, "LANG": "C"},
                    stdin=subprocess.DEVNULL, timeout=60, start_new_session=True)
                logs = sshd.logs_since(mark)
                h.captured += [r.stdout, r.stderr, *logs]
                if want:
                    check(f"password method through the profile's common-auth stack: token of "
                          f"{len(tok)} characters at pam_unix's prompt, use_first_pass: logged in",
                          r.returncode == 0 and "K8S=pam/pam-user" in r.stdout,
                          indent(f"rc={r.returncode} {r.stdout} {r.stderr}\n{logs[0][-2000:]}"))
                else:
                    dec = sshd_mod.Sshd.decisions(logs[2])
                    check("a password that is not a token: refused, nothing sent to the API "
                          "server, one decision: deny reason=not_jwt", r.returncode != 0 and
                          h.api.requests()["counts"].get(ktest.TOKENREVIEWS, 0) == 1
                          and [(d["verdict"], d.get("reason")) for d in dec]
                          == [("deny", "not_jwt")], dec)
        try:
            h.scan_for_secrets()
            check("no piece of any token in any log or output", True)
        except AssertionError as e:
            check("no piece of any token in any log or output", False, str(e))
    finally:
        if sshd is not None:
            sshd.cleanup()
        api.stop()


def purge(files_before_install, listed):
    r = run(["dpkg", "-P", PKG])
    check("dpkg -P libpam-k8stoken", r.returncode == 0, indent(r.stdout + r.stderr))
    check("package is gone from dpkg's database", pkg_status() in ("not-known", "un "),
          pkg_status())
    # a directory that was there before the install stays (also /lib, a symbolic link to
    # usr/lib on a merged-/usr system, which dpkg -L lists for the systemd units)
    left = [p for p in listed if p != "/." and os.path.lexists(p) and not (
        os.path.isdir(p) and p in files_before_install)]
    left += [p for p in (CACHE, CONF + ".dpkg-dist", CONF + ".dpkg-old", CONF + ".dpkg-new",
                         TIMER_WANTS)
             if os.path.lexists(p)]
    check("no file or directory of the package is left (dpkg -L before purge, the cache dir)",
          not left, left)


def main():
    no_build = "--no-build" in sys.argv[1:]
    start = time.monotonic()
    if not preconditions():
        print(f"{counts['passed']} passed, {counts['failed']} failed")
        return 1
    if build(no_build):
        deb, changes = deb_files()
        contents(deb)
        lintian(changes)
        pamd_before = tree_digest("/etc/pam.d")
        varlib_before = tree_digest("/var/lib/pam")
        _, listed_before, _ = debconf_profiles()
        # directories of the package that exist before it is installed may stay after purge
        existed = {p for p in (l.split()[-1][1:].rstrip("/") for l in
                               run(["dpkg-deb", "-c", deb]).stdout.splitlines())
                   if p and os.path.isdir(p)}
        listed = []
        tmp = tempfile.mkdtemp(prefix="kt-deb-test-")
        os.chmod(tmp, 0o755)
        installed = False
        try:
            r = run(["dpkg", "-i", deb], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
            installed = r.returncode == 0 or pkg_status() != "not-known"
            check("dpkg -i", r.returncode == 0, indent(r.stdout + r.stderr))
            listed = run(["dpkg", "-L", PKG]).stdout.split()
            check("installing changes nothing in /etc/pam.d (Default: no)",
                  tree_digest("/etc/pam.d") == pamd_before,
                  tree_diff(pamd_before, tree_digest("/etc/pam.d")))
            enabled, names, titles = debconf_profiles()
            seen = open("/var/lib/pam/seen").read().split()
            check("pam-auth-update lists the profile k8stoken (debconf choices, "
                  "/var/lib/pam/seen), not enabled",
                  "k8stoken" in names and "k8stoken" in seen and "k8stoken" not in enabled
                  and any("Kubernetes" in t for t in titles),
                  f"enabled={enabled} names={names} seen={seen}")
            installed_checks()
            stack = profile_enabled_stack(tmp)
            check("the namespace left /etc/pam.d alone", tree_digest("/etc/pam.d") == pamd_before,
                  tree_diff(pamd_before, tree_digest("/etc/pam.d")))
            logins(tmp, stack)
        except Exception as e:  # report, then purge all the same
            import traceback
            traceback.print_exc()
            check("package test ran to the end", False, repr(e))
        finally:
            if installed:
                purge(existed, listed)
            shutil.rmtree(tmp, ignore_errors=True)
        check("/etc/pam.d is byte-identical to before (file list, modes, sha256)",
              tree_digest("/etc/pam.d") == pamd_before,
              tree_diff(pamd_before, tree_digest("/etc/pam.d")))
        check("/var/lib/pam is identical to before", tree_digest("/var/lib/pam") == varlib_before,
              tree_diff(varlib_before, tree_digest("/var/lib/pam")))
        _, listed_after, _ = debconf_profiles()
        check("pam-auth-update no longer lists the profile", listed_after == listed_before,
              f"{listed_before} -> {listed_after}")
    print(f"package test: {time.monotonic() - start:.0f} s")
    print(f"{counts['passed']} passed, {counts['failed']} failed")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
