"""Client-side helpers: k8stoken-askpass and the kubectl plugin kubectl-k8stoken (docs/design.md §5).

Fast, no sshd: the askpass is run the way ssh and sudo run it (prompt in argv[1], answer on
stdout), and the plugin runs with fake `ssh`/`sudo`/`kubectl` programs earlier in PATH that
record what they were given and ask the askpass for every part like OpenSSH would. One test mints
with the real /usr/bin/kubectl (the version dispatcher) against the test API server. The
askpass's parts go through the real module (tests/tools/pam_driver, real libpam) to the test API
server, which records the token the module sent.

Binaries: KT_ASKPASS (default BUILD/k8stoken-askpass), KT_LIBK (default BUILD/libk8stoken.a, to
build a driver that asks the module's own kt_token_shape), BUILD = KT_BUILD (default build), the
plugin from pam_k8stoken/tools/.
"""
import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import ktest
from harness import BUILD, Harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ASKPASS = os.path.abspath(os.path.join(ROOT, os.environ.get("KT_ASKPASS")
                                       or os.path.join(BUILD, "k8stoken-askpass")))
LIBK = os.path.abspath(os.path.join(ROOT, os.environ.get("KT_LIBK")
                                    or os.path.join(BUILD, "libk8stoken.a")))
PLUGIN = os.path.join(ROOT, "pam_k8stoken", "tools", "kubectl-k8stoken")
KUBECTL = "/usr/bin/kubectl"
NO_TOKEN_MSG = b"k8stoken-askpass: no token: set K8STOKEN_FILE or K8STOKEN"
HOSTKEY_PROMPT = ("The authenticity of host '[127.0.0.1]:2222 ([127.0.0.1]:2222)' can't be established.\n"
                  "ED25519 key fingerprint is SHA256:M8Bfak+zydmxoVi2DD5Bpy7AVdSFdRbJOUeobrmScQo.\n"
                  "This key is not known by any other names.\n"
                  "Are you sure you want to continue connecting (yes/no/[fingerprint])? ")
SSH_OPTS = ["-o", "PreferredAuthentications=keyboard-interactive",
            "-o", "KbdInteractiveAuthentication=yes",
            "-o", "NumberOfPasswordPrompts=1"]


# --- real-shaped tokens -------------------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


SIG_BYTES = {"RS256-2048": ("RS256", 256), "RS256-4096": ("RS256", 512), "ES256": ("ES256", 64),
             "RS384-3072": ("RS384", 384), "PS512-4096": ("PS512", 512), "ES512": ("ES512", 132)}


def make_jwt(total, key="RS256-2048", seed=0):
    """A JWT shaped like a ServiceAccount token of exactly `total` characters: base64url header
    {"alg","kid"}, a realistic payload padded with a claim, a random signature of the length the
    key gives (RS256-2048: 342, RS256-4096: 683, ES256: 86 characters)."""
    alg, nsig = SIG_BYTES[key]
    rnd = hashlib.sha256(f"{total}/{key}/{seed}".encode()).digest()
    sig = b64url((rnd * (nsig // len(rnd) + 1))[:nsig])
    now = 1764400000
    full = {"aud": ["ssh://bastion-1"], "exp": now + 600, "iat": now,
            "iss": "https://kubernetes.default.svc.cluster.local",
            "jti": "6d9d6f9f-0b0e-4a53-9f5c-0c7c2b1a6b7e",
            "kubernetes.io": {"namespace": "ops", "serviceaccount": {
                "name": "deployer", "uid": "0f6a6c7c-5c53-4c0a-9a55-7d4f1c7d2c11"}},
            "nbf": now, "sub": "system:serviceaccount:ops:deployer"}
    small = {"aud": ["a"], "exp": now + 600, "iat": now, "sub": "system:serviceaccount:ops:d"}
    for base_claims in (full, small):
        for kid_len in range(40, 44):
            header = b64url(json.dumps({"alg": alg, "kid": b64url(rnd)[:kid_len]},
                                       separators=(",", ":")).encode())
            claims = dict(base_claims, x="")
            base = len(header) + 1 + 1 + len(sig)
            for pad in range(0, total):
                claims["x"] = "p" * pad
                payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
                if base + len(payload) == total:
                    return f"{header}.{payload}.{sig}"
                if base + len(payload) > total:
                    break
    raise ValueError(f"cannot build a {key} token of {total} characters")


def make_jwt_with_prefix(head_len, key="RS256-4096"):
    """A token whose header+payload+2 dots are exactly head_len characters, and whose signature's
    first 342 characters are canonical base64url on their own (so the prefix ending there has the
    shape of a complete RS256-2048 token)."""
    sig_len = len(b64url(b"\0" * SIG_BYTES[key][1]))
    token = make_jwt(head_len + sig_len, key)
    i = head_len + 341
    return token[:i] + "A" + token[i + 1:]


def reference_parts(token, size, shape):
    """The partition rule, written out: greedy, a boundary moves earlier while the prefix
    ending there is COMPLETE."""
    parts, start = [], 0
    while start < len(token):
        end = len(token) if len(token) - start <= size else start + size
        while end < len(token) and shape([token[:end]])[0] == "COMPLETE":
            end -= 1
            assert end > start
        parts.append(token[start:end])
        start = end
    return parts


# --- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def askpass():
    if not os.access(ASKPASS, os.X_OK):
        pytest.fail(f"k8stoken-askpass not built at {ASKPASS} (make, or set KT_ASKPASS)")
    return ASKPASS


SHAPE_DRIVER = r"""
#include <stdio.h>
#include <string.h>
#include "token.h"
int main(void) {
	static char line[1 << 17];
	while (fgets(line, sizeof line, stdin)) {
		size_t n = strcspn(line, "\n");
		enum kt_token_shape s = kt_token_shape(line, n);
		puts(s == KT_SHAPE_COMPLETE ? "COMPLETE" : s == KT_SHAPE_PARTIAL ? "PARTIAL" : "NOT_TOKEN");
	}
	return 0;
}
"""


@pytest.fixture(scope="session")
def shape(tmp_path_factory):
    """shape([text, ...]) -> ["COMPLETE" | "PARTIAL" | "NOT_TOKEN", ...], by the module's own
    kt_token_shape (a small driver linked with libk8stoken.a)."""
    d = tmp_path_factory.mktemp("shape")
    src, exe = d / "shape.c", d / "shape"
    src.write_text(SHAPE_DRIVER)
    libs = subprocess.run(["pkg-config", "--libs", "json-c", "libcrypto"], capture_output=True,
                          text=True).stdout.split()
    includes = [a for d in ("core", "util") for a in ("-iquote", os.path.join(ROOT, "pam_k8stoken", d))]
    cc = subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE"] + includes +
                        ["-o", str(exe), str(src), LIBK] + libs, capture_output=True, text=True)
    assert cc.returncode == 0, f"cannot link a kt_token_shape driver against {LIBK}: {cc.stderr}"

    def run(texts):
        out = subprocess.run([str(exe)], input="".join(t + "\n" for t in texts), capture_output=True,
                             text=True, check=True).stdout.split()
        assert len(out) == len(texts)
        return out
    return run


def run_askpass(askpass, prompt, token=None, token_file=None, extra_env=None, argv=None):
    env = {"PATH": "/usr/bin:/bin"}
    if token is not None:
        env["K8STOKEN"] = token
    if token_file is not None:
        env["K8STOKEN_FILE"] = str(token_file)
    env.update(extra_env or {})
    args = [askpass] + ([prompt] if argv is None else argv)
    return subprocess.run(args, env=env, capture_output=True, timeout=10)


def ask_part(askpass, n, token_file, user_host="alice@127.0.0.1", extra_env=None):
    """Part n as ssh would get it: prompt with ssh's "(user@host) " prefix, answer cut at the
    first CR/LF; asserts the output is exactly answer + newline."""
    prompt = "Kubernetes token: " if n == 1 else f"Kubernetes token (part {n}): "
    p = run_askpass(askpass, f"({user_host}) {prompt}", token_file=token_file, extra_env=extra_env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.endswith(b"\n") and p.stdout.count(b"\n") == 1
    assert p.stderr == b""
    return p.stdout[:-1].decode()


def all_parts(askpass, token_file, extra_env=None, limit=100):
    parts = []
    for n in range(1, limit):
        part = ask_part(askpass, n, token_file, extra_env=extra_env)
        if part == "":
            return parts
        parts.append(part)
    raise AssertionError("no end of parts")


@pytest.fixture(scope="session")
def module_world(tmp_path_factory):
    """module_world(key) -> Harness: the real module (pam_driver, real libpam) against a test
    API server signing with key; pam/pam-user is mapped to alice."""
    worlds, servers = {}, []

    def get(key="rs256-2048"):
        if key not in worlds:
            d = tmp_path_factory.mktemp("module-" + key)
            api = ktest.ApiServer().start(str(d / "api"), key=key)
            servers.append(api)
            worlds[key] = Harness(api, str(d))
        return worlds[key]
    yield get
    for api in servers:
        api.stop()


def converse(askpass, h, token_file, user="alice"):
    """The real module asks, the askpass answers: pam_authenticate through pam_driver with the
    askpass's parts as the answers, then every prompt the module showed is put to the askpass
    (with ssh's "(user@host) " prefix) and must get the answer that was given at that prompt.
    Returns (Result, the token the module sent in its TokenReview, prompts shown)."""
    parts = all_parts(askpass, token_file)
    h.api.reset_requests()
    r = h.run(user, parts + [""])
    shown = []
    for p in r.prompts:
        style, _, text = p.partition(" ")
        assert style == "off", p                      # echo off, as for a password
        shown.append(text)
    for i, text in enumerate(shown):
        answered = run_askpass(askpass, "(alice@127.0.0.1) " + text, token_file=token_file)
        assert answered.returncode == 0, answered.stderr
        assert answered.stdout.decode()[:-1] == (parts + [""])[i], (i, text)
    sent = [json.loads(q["body"])["spec"]["token"] for q in h.api.requests()["last"]
            if q["path"] == ktest.TOKENREVIEWS]
    assert len(sent) == 1, len(sent)                  # one token, one TokenReview
    return r, sent[0], shown


def expected_prompts(n):
    return ["Kubernetes token: "] + [f"Kubernetes token (part {k}): " for k in range(2, n + 1)]


def write_token(tmp_path, token, name="token", suffix=""):
    path = tmp_path / name
    path.write_text(token + suffix)
    os.chmod(path, 0o600)
    return path


# --- askpass: partition -------------------------------------------------------------------------

LENGTHS = [(600, "ES256"), (620, "RS256-2048"), (930, "RS256-2048"), (1174, "RS256-2048"),
           (1515, "RS256-4096"), (2100, "RS256-4096"), (2100, "ES256"), (1400, "ES512"),
           (1200, "RS384-3072"), (2100, "PS512-4096")]


@pytest.mark.parametrize("total,key", LENGTHS, ids=[f"{t}-{k}" for t, k in LENGTHS])
def test_parts_join_to_the_token(askpass, tmp_path, total, key):
    token = make_jwt(total, key)
    assert len(token) == total
    path = write_token(tmp_path, token)
    parts = all_parts(askpass, path)
    assert "".join(parts) == token
    assert all(1 <= len(p) <= 500 for p in parts)
    assert len(parts) == -(-total // 500)          # greedy: no boundary had to move here
    assert all(len(p) == 500 for p in parts[:-1])
    # asking again gives the same answers (stateless, deterministic)
    assert all_parts(askpass, path) == parts


@pytest.mark.parametrize("total,key", LENGTHS, ids=[f"{t}-{k}" for t, k in LENGTHS])
def test_module_conversation_gets_the_whole_token(askpass, shape, module_world, tmp_path,
                                                  total, key):
    """The real module, fed the askpass's parts, asks exactly once per part and sends the whole
    token in one TokenReview (the synthetic signature is then refused: unauthenticated)."""
    token = make_jwt(total, key)
    assert shape([token]) == ["COMPLETE"]
    path = write_token(tmp_path, token)
    parts = all_parts(askpass, path)
    prefixes = ["".join(parts[:i]) for i in range(1, len(parts))]
    assert shape(prefixes) == ["PARTIAL"] * len(prefixes)
    r, sent, shown = converse(askpass, module_world(), path)
    assert sent == token
    assert shown == expected_prompts(len(parts))
    assert r.code == "PAM_AUTH_ERR"
    assert r.decision()["verdict"] == "deny" and r.decision()["reason"] == "unauthenticated", r


def test_boundary_moves_before_a_complete_looking_prefix(askpass, shape, module_world, tmp_path):
    # RS256-4096 whose header+payload take 658 characters: the prefix of 1,000 characters
    # carries a 342-character signature, the length of an RS256-2048 one (COMPLETE); the
    # second part must end earlier, or the module would stop asking after it.
    token = make_jwt_with_prefix(658, "RS256-4096")
    assert len(token) == 658 + 683
    assert shape([token[:1000]]) == ["COMPLETE"]
    path = write_token(tmp_path, token)
    parts = all_parts(askpass, path)
    assert parts == reference_parts(token, 500, shape)
    assert len(parts[0]) == 500 and len(parts[1]) < 500 and len(parts) == 3
    assert "".join(parts) == token
    r, sent, shown = converse(askpass, module_world(), path)
    assert sent == token and shown == expected_prompts(3)
    assert r.code == "PAM_AUTH_ERR" and r.decision()["reason"] == "unauthenticated", r


@pytest.mark.parametrize("size", [500, 343, 100])
@pytest.mark.parametrize("sig", [342, 512])
def test_boundaries_that_must_move(askpass, shape, tmp_path, size, sig):
    """Tokens built so that a greedy boundary lands exactly where the signature so far has the
    length of a 2048- or 3072-bit one."""
    env = {"K8STOKEN_PART_SIZE": str(size)}
    moved = 0
    for k in range(1, 12):
        head = k * size - sig
        if not 250 <= head <= 1400:
            continue
        token = make_jwt_with_prefix(head, "RS256-4096")
        if shape([token[:head + sig]]) != ["COMPLETE"]:
            continue
        path = write_token(tmp_path, token)
        parts = all_parts(askpass, path, extra_env=env)
        assert parts == reference_parts(token, size, shape)
        assert "".join(parts) == token
        assert len(parts[k - 1]) < size
        moved += 1
    assert moved >= 1


@pytest.mark.parametrize("size", [1023, 500, 343, 100, 37])
def test_sweep_of_lengths_and_part_sizes(askpass, shape, tmp_path, size):
    """Every boundary of many tokens, for several K8STOKEN_PART_SIZE values: parts within the
    size, joined exactly, never a COMPLETE prefix at a boundary."""
    env = {"K8STOKEN_PART_SIZE": str(size)}
    checked = 0
    for key in ("RS256-2048", "RS256-4096", "ES256"):
        for total in range(620, 2200, 97):
            try:
                token = make_jwt(total, key)
            except ValueError:
                continue
            path = write_token(tmp_path, token)
            parts = all_parts(askpass, path, extra_env=env)
            assert "".join(parts) == token
            assert all(1 <= len(p) <= size for p in parts)
            prefixes = ["".join(parts[:i]) for i in range(1, len(parts))]
            assert "COMPLETE" not in shape(prefixes)
            assert parts == reference_parts(token, size, shape)
            checked += 1
    assert checked > 30


def test_minted_tokens_from_the_test_apiserver(askpass, module_world, tmp_path):
    """Real tokens: TokenRequest (RS256-2048, RS256-4096, ES256) and pod-bound ones, through the
    askpass and the real module: allowed as alice."""
    seen = set()
    for key in ("rs256-2048", "rs256-4096", "es256"):
        h = module_world(key)
        srv = h.api
        h.ensure_sa("pam", "pam-user")
        try:
            srv.create_node("node-1")
            srv.create_pod("pam", "web-0", "pam-user", node="node-1")
        except ktest.ApiError as e:
            assert e.status == 409, e
        tokens = [h.token(),
                  h.token(seconds=3600, bound={"kind": "Pod", "apiVersion": "v1", "name": "web-0"})]
        for token in tokens:
            seen.add(len(token))
            path = write_token(tmp_path, token, suffix="\n")
            parts = all_parts(askpass, path)
            assert "".join(parts) == token and all(len(p) <= 500 for p in parts)
            r, sent, shown = converse(askpass, h, path)
            assert sent == token and shown == expected_prompts(len(parts))
            assert r.code == "PAM_SUCCESS", r
            d = r.decision()
            assert (d["verdict"], d["user"], d["sa"]) == ("allow", "alice", "pam/pam-user"), d
    assert max(seen) > 1000 and min(seen) < 1000


# --- askpass: prompts ---------------------------------------------------------------------------

@pytest.fixture
def token_2100(tmp_path):
    token = make_jwt(2100, "RS256-4096")
    return token, write_token(tmp_path, token)


@pytest.mark.parametrize("prompt,part", [
    ("Kubernetes token: ", 1),
    ("(alice@127.0.0.1) Kubernetes token: ", 1),
    ("Kubernetes token (part 2): ", 2),
    ("(alice@127.0.0.1) Kubernetes token (part 2): ", 2),
    ("(alice@bastion-1.example.org) Kubernetes token (part 3): ", 3),
    ("Kubernetes token (part 4) - paste the next 500 characters: ", 4),
    ("[sudo] Kubernetes token (part 5): ", 5),
    ("(alice@(part 3)) Kubernetes token: ", 1),        # text before the prompt mark is ignored
    ("Kubernetes token for bastion-1: ", 1),            # a customised `prompt` keeping the mark
])
def test_prompt_selects_the_part(askpass, token_2100, prompt, part):
    token, path = token_2100
    p = run_askpass(askpass, prompt, token_file=path)
    assert p.returncode == 0 and p.stderr == b""
    assert p.stdout == token[(part - 1) * 500:part * 500].encode() + b"\n"


@pytest.mark.parametrize("n", [6, 7, 99, 100000])
def test_part_past_the_end_is_an_empty_line(askpass, token_2100, n):
    _, path = token_2100
    p = run_askpass(askpass, f"(alice@127.0.0.1) Kubernetes token (part {n}): ", token_file=path)
    assert (p.returncode, p.stdout, p.stderr) == (0, b"\n", b"")


@pytest.mark.parametrize("prompt", [
    HOSTKEY_PROMPT,
    "(alice@127.0.0.1) Password: ",
    "Password: ",
    "Enter passphrase for key '/root/.ssh/id_ed25519': ",
    "(alice@127.0.0.1) kubernetes token: ",     # the mark is case-sensitive
    "Kubernetes Token: ",
    "Kubernetes token (part 0): ",
    "Kubernetes token (part -1): ",
    "Kubernetes token (part x): ",
    "Kubernetes token (part 2: ",
    "Kubernetes token (part 1000000): ",
    "Kubernetes token (part 99999999999999999999): ",
    "",
])
def test_other_prompts_get_no_answer(askpass, token_2100, prompt):
    token, path = token_2100
    p = run_askpass(askpass, prompt, token_file=path)
    assert p.returncode == 1
    assert p.stdout == b""
    assert token[:20].encode() not in p.stderr


def test_wrong_argument_count(askpass, token_2100):
    _, path = token_2100
    for argv in ([], ["Kubernetes token: ", "extra"]):
        p = run_askpass(askpass, None, token_file=path, argv=argv)
        assert p.returncode == 1 and p.stdout == b"" and b"usage:" in p.stderr


def test_help(askpass):
    p = run_askpass(askpass, None, argv=["--help"])
    assert p.returncode == 0
    for word in (b"SSH_ASKPASS", b"SUDO_ASKPASS", b"K8STOKEN_FILE", b"K8STOKEN", b"(part N)",
                 b"Kubernetes token"):
        assert word in p.stdout


# --- askpass: token sources -----------------------------------------------------------------------

def test_token_file_is_preferred_over_env(askpass, tmp_path):
    token = make_jwt(930)
    other = make_jwt(931)
    path = write_token(tmp_path, token)
    p = run_askpass(askpass, "Kubernetes token: ", token=other, token_file=path)
    assert p.stdout == token[:500].encode() + b"\n"
    p = run_askpass(askpass, "Kubernetes token: ", token=other)
    assert p.stdout == other[:500].encode() + b"\n"
    # an empty K8STOKEN_FILE counts as unset
    p = run_askpass(askpass, "Kubernetes token: ", token=other, extra_env={"K8STOKEN_FILE": ""})
    assert p.stdout == other[:500].encode() + b"\n"


@pytest.mark.parametrize("suffix", ["", "\n", "\r\n"])
def test_one_trailing_newline_is_ignored(askpass, tmp_path, suffix):
    token = make_jwt(930)
    path = write_token(tmp_path, token, suffix=suffix)
    assert "".join(all_parts(askpass, path)) == token
    p = run_askpass(askpass, "Kubernetes token (part 2): ", token=token + suffix)
    assert p.stdout == token[500:].encode() + b"\n"


@pytest.mark.parametrize("env", [{}, {"K8STOKEN": ""}, {"K8STOKEN_FILE": "", "K8STOKEN": ""}])
def test_no_token(askpass, env):
    p = run_askpass(askpass, "(alice@127.0.0.1) Kubernetes token: ", extra_env=env)
    assert p.returncode == 1 and p.stdout == b""
    assert p.stderr.strip() == NO_TOKEN_MSG


def test_bad_token_sources(askpass, tmp_path):
    token = make_jwt(930)
    cases = {}
    cases["missing file"] = {"K8STOKEN_FILE": str(tmp_path / "nope")}
    cases["directory"] = {"K8STOKEN_FILE": str(tmp_path)}
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases["fifo"] = {"K8STOKEN_FILE": str(fifo)}           # must not hang
    cases["empty file"] = {"K8STOKEN_FILE": str(write_token(tmp_path, "", "empty"))}
    cases["only newline"] = {"K8STOKEN_FILE": str(write_token(tmp_path, "\n", "nl"))}
    cases["two newlines"] = {"K8STOKEN_FILE": str(write_token(tmp_path, token + "\n\n", "nl2"))}
    cases["space inside"] = {"K8STOKEN_FILE": str(write_token(tmp_path, token[:300] + " " + token[300:], "sp"))}
    cases["two lines"] = {"K8STOKEN_FILE": str(write_token(tmp_path, token + "\n" + token, "two"))}
    cases["env garbage"] = {"K8STOKEN": token + "\tx"}
    cases["huge file"] = {"K8STOKEN_FILE": str(write_token(tmp_path, token * 100, "huge"))}
    unreadable = write_token(tmp_path, token, "unreadable")
    os.chmod(unreadable, 0)
    if os.geteuid() != 0:
        cases["unreadable"] = {"K8STOKEN_FILE": str(unreadable)}
    for what, env in cases.items():
        p = run_askpass(askpass, "Kubernetes token: ", extra_env=env)
        assert p.returncode == 1, what
        assert p.stdout == b"", what
        assert p.stderr.startswith(b"k8stoken-askpass: "), what
        assert token[:40].encode() not in p.stderr and token[300:340].encode() not in p.stderr, what


@pytest.mark.parametrize("value", ["0", "1024", "abc", "-5", "500x", " 500"])
def test_bad_part_size(askpass, tmp_path, value):
    path = write_token(tmp_path, make_jwt(930))
    p = run_askpass(askpass, "Kubernetes token: ", token_file=path, extra_env={"K8STOKEN_PART_SIZE": value})
    assert p.returncode == 1 and p.stdout == b"" and b"K8STOKEN_PART_SIZE" in p.stderr


def test_part_size_too_small_to_split_safely(askpass, tmp_path):
    # with one character per part the prefix one short of a COMPLETE RS256 prefix cannot end
    # anywhere else: refused rather than letting the module stop early
    token = make_jwt_with_prefix(600, "RS256-4096")
    path = write_token(tmp_path, token)
    env = {"K8STOKEN_PART_SIZE": "1"}
    p = run_askpass(askpass, "Kubernetes token (part 1000): ", token_file=path, extra_env=env)
    assert p.returncode == 1 and p.stdout == b""
    assert b"cannot split" in p.stderr


def test_answer_is_one_write(askpass, tmp_path):
    assert shutil.which("strace"), "strace not installed (tests/install-deps.sh installs it)"
    token = make_jwt(2100, "RS256-4096")
    path = write_token(tmp_path, token)
    log = tmp_path / "strace.log"
    env = {"PATH": "/usr/bin:/bin", "K8STOKEN_FILE": str(path)}
    p = subprocess.run(["strace", "-f", "-qq", "-e", "trace=write,writev,pwrite64", "-e", "signal=none",
                        "-s", "2000", "-o", str(log), askpass, "(alice@h) Kubernetes token (part 2): "],
                       env=env, capture_output=True, timeout=20)
    assert p.returncode == 0
    assert p.stdout == token[500:1000].encode() + b"\n"
    calls = [line for line in log.read_text().splitlines() if "write" in line]
    assert len(calls) == 1, calls
    assert calls[0].split("(", 1)[1].startswith("1, ")
    assert calls[0].rstrip().endswith("= 501")


def test_ssh_style_reader_that_closes_after_1023_bytes(askpass, tmp_path):
    """OpenSSH reads at most 1,023 bytes and closes the pipe: with K8STOKEN_PART_SIZE=1023 the
    answer still arrives whole and the helper exits 0 (no second write to die on)."""
    token = make_jwt(2100, "RS256-4096")
    path = write_token(tmp_path, token)
    env = {"PATH": "/usr/bin:/bin", "K8STOKEN_FILE": str(path), "K8STOKEN_PART_SIZE": "1023"}
    for n, want in ((1, token[:1023]), (2, token[1023:2046]), (3, token[2046:])):
        proc = subprocess.Popen([askpass, f"(a@b) Kubernetes token (part {n}): "], env=env,
                                stdout=subprocess.PIPE)
        got = b""
        while len(got) < 1023:
            chunk = os.read(proc.stdout.fileno(), 1023 - len(got))
            if not chunk:
                break
            got += chunk
        proc.stdout.close()
        assert proc.wait(10) == 0
        assert got.split(b"\n")[0].split(b"\r")[0] == want.encode()


# --- askpass: the password opt-in (K8STOKEN_ANSWER_PASSWORD=1) ------------------------------------

OPT_IN = {"K8STOKEN_ANSWER_PASSWORD": "1"}
SSH_PASSWORD = "alice@127.0.0.1's password: "
SUDO_PASSWORD = "[sudo] password for alice: "
# prompt -> the longest token it gets (ssh: 1,023 characters per answer, sudo: 511)
PASSWORD_PROMPTS = {SSH_PASSWORD: 1023, "alice@bastion-1.example.org's password: ": 1023,
                    "alice@::1's password: ": 1023, "Password: ": 1023, "Password:": 1023,
                    "(alice@127.0.0.1) Password: ": 1023, SUDO_PASSWORD: 511,
                    "[sudo] password for k8se2e1a2b3c:": 511}
NOT_ANSWERED = "k8stoken-askpass: not a \"Kubernetes token\" prompt; not answering it"
OPT_IN_HINT = " (a password prompt gets the token only with K8STOKEN_ANSWER_PASSWORD=1)"


def too_long_message(length, limit):
    return (f"k8stoken-askpass: the token has {length} characters, but a password prompt "
            f"{'of sudo' if limit == 511 else 'of ssh'} passes at most {limit} in its one "
            "answer; not answering. Use the module's own \"Kubernetes token\" prompt, which "
            "takes the token in parts (ssh: keyboard-interactive with pam_k8stoken first in "
            "the stack)")


@pytest.mark.parametrize("prompt", sorted(PASSWORD_PROMPTS))
@pytest.mark.parametrize("setting", [None, "", "0"])
def test_password_prompt_refused_without_opt_in(askpass, tmp_path, prompt, setting):
    token = make_jwt(620, "ES256")
    path = write_token(tmp_path, token)
    env = {} if setting is None else {"K8STOKEN_ANSWER_PASSWORD": setting}
    p = run_askpass(askpass, prompt, token_file=path, extra_env=env)
    assert (p.returncode, p.stdout) == (1, b"")
    assert p.stderr.decode() == NOT_ANSWERED + OPT_IN_HINT + "\n"


@pytest.mark.parametrize("prompt", sorted(PASSWORD_PROMPTS))
def test_password_prompt_gets_the_whole_token_when_it_fits(askpass, tmp_path, prompt):
    """The whole token in one answer, up to the limit of the program that asks."""
    limit = PASSWORD_PROMPTS[prompt]
    for total in (620, limit) if limit > 620 else (limit,):
        token = make_jwt(total, "ES256" if total < 900 else "RS256-2048")
        path = write_token(tmp_path, token, suffix="\n")
        p = run_askpass(askpass, prompt, token_file=path, extra_env=OPT_IN)
        assert (p.returncode, p.stdout, p.stderr) == (0, token.encode() + b"\n", b"")


@pytest.mark.parametrize("prompt", sorted(PASSWORD_PROMPTS))
def test_password_prompt_refuses_a_token_that_does_not_fit(askpass, tmp_path, prompt):
    limit = PASSWORD_PROMPTS[prompt]
    for total in (limit + 1, 1515):
        token = make_jwt(total, "ES256" if total < 900 else "RS256-4096")
        path = write_token(tmp_path, token)
        p = run_askpass(askpass, prompt, token_file=path, extra_env=OPT_IN)
        assert (p.returncode, p.stdout) == (1, b"")
        assert p.stderr.decode() == too_long_message(total, limit) + "\n"


def test_password_prompt_under_sudo_has_sudos_limit(askpass, tmp_path):
    """sudo -A runs the askpass as its child: "Password: " (a sudoers passprompt) then gets
    sudo's 511, known from the parent's name."""
    token = make_jwt(620, "ES256")
    path = write_token(tmp_path, token)
    fake_sudo = tmp_path / "sudo"
    os.symlink("/bin/sh", fake_sudo)              # a parent whose name (comm) is "sudo"
    env = {"PATH": "/usr/bin:/bin", "K8STOKEN_FILE": str(path), **OPT_IN}
    script = '"$0" "Password: "; exit $?'        # not exec: the shell stays the parent
    p = subprocess.run([str(fake_sudo), "-c", script, askpass], env=env, capture_output=True,
                       timeout=10)
    assert (p.returncode, p.stdout) == (1, b"")
    assert p.stderr.decode() == too_long_message(620, 511) + "\n"
    p = subprocess.run(["/bin/sh", "-c", script, askpass], env=env, capture_output=True,
                       timeout=10)
    assert (p.returncode, p.stdout) == (0, token.encode() + b"\n")


@pytest.mark.parametrize("prompt", [
    HOSTKEY_PROMPT,
    "New password: ",
    "Retype new password: ",
    "Current password: ",
    "(current) UNIX password: ",
    "Enter new UNIX password: ",
    "Password for alice@EXAMPLE.ORG: ",
    "Enter passphrase for key '/root/.ssh/id_ed25519': ",
    "(alice@127.0.0.1) Verification code: ",
    "password: ",
    "Password:  ",
    "alice@127.0.0.1's password",
    "alice @127.0.0.1's password: ",
    "'s password: ",
    "(alice 127.0.0.1) Password: ",
    "() Password: ",
    "(alice@127.0.0.1)Password: ",
    "[sudo] password for : ",
    "[sudo] password for alice bob: ",
    "[sudo] Password: ",
    "Password: \n",
    "x" * 600 + " Password: ",
])
def test_other_prompts_get_no_answer_with_opt_in(askpass, tmp_path, prompt):
    """Only the three known password prompt shapes: never a password change, a passphrase, a
    question or a one-time code."""
    token = make_jwt(620, "ES256")
    path = write_token(tmp_path, token)
    p = run_askpass(askpass, prompt, token_file=path, extra_env=OPT_IN)
    assert (p.returncode, p.stdout) == (1, b"")
    assert p.stderr.decode() == NOT_ANSWERED + "\n"


@pytest.mark.parametrize("value", ["yes", "true", "2", "01", " 1", "1 "])
def test_bad_answer_password_setting(askpass, tmp_path, value):
    path = write_token(tmp_path, make_jwt(620, "ES256"))
    p = run_askpass(askpass, SSH_PASSWORD, token_file=path,
                    extra_env={"K8STOKEN_ANSWER_PASSWORD": value})
    assert (p.returncode, p.stdout) == (1, b"")
    assert p.stderr == (b"k8stoken-askpass: K8STOKEN_ANSWER_PASSWORD must be 1 (answer password "
                        b"prompts) or 0; not answering\n")


def test_opt_in_leaves_token_prompts_alone(askpass, token_2100):
    """With the opt-in the module's own prompts still get parts of 500."""
    token, path = token_2100
    for n in (1, 2, 5):
        p = run_askpass(askpass, f"(alice@127.0.0.1) Kubernetes token (part {n}): ",
                        token_file=path, extra_env=OPT_IN)
        assert (p.returncode, p.stdout) == (0, token[(n - 1) * 500:n * 500].encode() + b"\n")


def test_password_opt_in_no_token(askpass):
    p = run_askpass(askpass, SSH_PASSWORD, extra_env=OPT_IN)
    assert (p.returncode, p.stdout) == (1, b"")
    assert p.stderr.strip() == NO_TOKEN_MSG


def test_help_names_the_opt_in(askpass):
    p = run_askpass(askpass, None, argv=["--help"])
    assert p.returncode == 0
    for word in (b"K8STOKEN_ANSWER_PASSWORD=1", b"'s password: ", b"[sudo] password", b"1023",
                 b"511"):
        assert word in p.stdout, word


# --- the kubectl plugin ---------------------------------------------------------------------------

FAKE_CLIENT = r'''#!/usr/bin/python3
# Fake ssh/sudo: records argv and environment, asks the askpass for every part like OpenSSH
# (prompt with "(user@host) ", read <= 1023 bytes, cut at CR/LF) and reassembles the token.
import hashlib, json, os, stat, subprocess, sys, time
prog = os.path.basename(sys.argv[0])
env = os.environ
askpass = env.get("SSH_ASKPASS" if prog == "ssh" else "SUDO_ASKPASS")
rec = {"prog": prog, "argv": sys.argv[1:], "pid": os.getpid(),
       "env": {k: env.get(k) for k in ("K8STOKEN_FILE", "K8STOKEN", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE",
                                       "SUDO_ASKPASS", "DISPLAY", "K8STOKEN_PART_SIZE",
                                       "K8STOKEN_ANSWER_PASSWORD")}}
path = env.get("K8STOKEN_FILE")
if path and os.path.exists(path):
    st = os.lstat(path)
    rec["file_mode"] = stat.S_IMODE(st.st_mode)
    rec["file_regular"] = stat.S_ISREG(st.st_mode)
    rec["file_uid"] = st.st_uid
joined, asked = "", []
if askpass and env.get("FAKE_PASSWORD_PROMPT"):
    # one password prompt, as ssh's password method or sudo over pam_unix ask it
    p = subprocess.Popen([askpass, env["FAKE_PASSWORD_PROMPT"]], stdout=subprocess.PIPE)
    out = p.stdout.read(1023)
    p.stdout.close()
    joined = out.split(b"\n")[0].decode() if p.wait() == 0 else ""
    asked.append(len(joined))
elif askpass:
    for n in range(1, 40):
        prompt = "Kubernetes token: " if n == 1 else "Kubernetes token (part %d): " % n
        if prog == "ssh":
            prompt = "(alice@127.0.0.1) " + prompt
        p = subprocess.Popen([askpass, prompt], stdout=subprocess.PIPE)
        out = p.stdout.read(1023)
        p.stdout.close()
        rc = p.wait()
        answer = out.split(b"\n")[0].split(b"\r")[0].decode() if rc == 0 else ""
        asked.append(len(answer))
        if not answer:
            break
        joined += answer
rec["asked"] = asked
rec["sha256"] = hashlib.sha256(joined.encode()).hexdigest()
rec["token_in_env"] = bool(joined) and any(joined[:40] in v for v in os.environ.values())
rec["token_in_argv"] = bool(joined) and any(joined[:40] in a for a in sys.argv)
with open(os.environ["FAKE_RECORD"] + ".token", "w") as f:
    f.write(joined)
with open(os.environ["FAKE_RECORD"] + ".tmp", "w") as f:
    json.dump(rec, f)
os.rename(os.environ["FAKE_RECORD"] + ".tmp", os.environ["FAKE_RECORD"])
if env.get("FAKE_MODE") == "hang":
    time.sleep(60)
sys.exit(int(env.get("FAKE_RC", "0")))
'''

FAKE_KUBECTL = r'''#!/usr/bin/python3
import json, os, sys
with open(os.environ["FAKE_KUBECTL_RECORD"], "w") as f:
    json.dump(sys.argv[1:], f)
if os.environ.get("FAKE_KUBECTL_FAIL"):
    sys.stderr.write("error: failed to create token: serviceaccounts \"x\" not found\n")
    sys.exit(1)
sys.stdout.write(open(os.environ["FAKE_KUBECTL_TOKEN"]).read())
'''


def default_signal_actions():
    """In the plugin's process before exec: SIGINT and SIGQUIT as a terminal delivers them.
    Started from a background job, the tests inherit them ignored, and a shell script cannot
    trap a signal that was ignored when it started."""
    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)


class Plugin:
    """A private bin directory (plugin + askpass next to each other, fake ssh/sudo/kubectl),
    HOME and XDG_RUNTIME_DIR for one test."""

    def __init__(self, tmp_path, askpass, fake_kubectl=True):
        self.tmp = tmp_path
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        os.symlink(PLUGIN, self.bin / "kubectl-k8stoken")
        os.symlink(askpass, self.bin / "k8stoken-askpass")
        for name in ("ssh", "sudo"):
            (self.bin / name).write_text(FAKE_CLIENT)
            os.chmod(self.bin / name, 0o755)
        if fake_kubectl:
            (self.bin / "kubectl").write_text(FAKE_KUBECTL)
            os.chmod(self.bin / "kubectl", 0o755)
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.run_dir = tmp_path / "run"
        self.run_dir.mkdir(mode=0o700)
        self.record = tmp_path / "record.json"
        self.kubectl_record = tmp_path / "kubectl.json"
        self.env = {"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.home),
                    "XDG_RUNTIME_DIR": str(self.run_dir), "FAKE_RECORD": str(self.record),
                    "FAKE_KUBECTL_RECORD": str(self.kubectl_record), "LC_ALL": "C.UTF-8"}

    def argv(self, *args):
        return [str(self.bin / "kubectl-k8stoken")] + list(args)

    def run(self, *args, env=None, input=None, timeout=30):
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run(self.argv(*args), env=e, input=input, capture_output=True, timeout=timeout)

    def popen(self, *args, env=None):
        e = dict(self.env)
        e.update(env or {})
        return subprocess.Popen(self.argv(*args), env=e, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=default_signal_actions)

    def wait_record(self, timeout=20):
        deadline = time.monotonic() + timeout
        while not self.record.exists():
            assert time.monotonic() < deadline, "fake client never ran"
            time.sleep(0.02)
        return json.loads(self.record.read_text())

    def leftovers(self):
        return sorted(os.listdir(self.run_dir))


@pytest.fixture
def plugin(tmp_path, askpass):
    return Plugin(tmp_path, askpass)


def sha(token):
    return hashlib.sha256(token.encode()).hexdigest()


def test_plugin_help(plugin):
    for args in (["--help"], ["-h"], ["help"], ["ssh", "--help"], ["sudo", "-h"]):
        p = plugin.run(*args)
        assert p.returncode == 0, args
        text = p.stdout.decode()
        for word in ("kubectl k8stoken ssh", "kubectl k8stoken sudo", "--serviceaccount", "--audience",
                     "--duration", "--token-file", "10m", "K8STOKEN_SERVICEACCOUNT", "K8STOKEN_AUDIENCE",
                     "KbdInteractiveAuthentication yes", "Kubernetes token", "Examples", "0600",
                     "kubectl create token", "Exit status"):
            assert word in text, word
    assert not plugin.record.exists()


@pytest.mark.parametrize("args,message", [
    ([], "missing command"),
    (["scp", "host"], "unknown command 'scp'"),
    (["ssh", "--serviceaccount", "ops/deployer", "--audience", "a"], "missing [USER@]HOST"),
    (["sudo", "--serviceaccount", "ops/deployer", "--audience", "a"], "missing COMMAND"),
    (["ssh", "--audience", "a", "host"], "--serviceaccount [NS/]NAME is required"),
    (["ssh", "--serviceaccount", "ops/deployer", "host"], "--audience AUD is required"),
    (["ssh", "--serviceaccount", "ops/deployer", "--audience"], "option --audience needs a value"),
    (["ssh", "--serviceaccount", "ops/deployer/x", "--audience", "a", "h"], "expected NS/NAME or NAME"),
    (["ssh", "--serviceaccount", "Ops/deployer", "--audience", "a", "h"], "not a valid namespace"),
    (["ssh", "--serviceaccount", "ops/-n", "--audience", "a", "h"], "not a valid ServiceAccount"),
    (["ssh", "--serviceaccount", "/deployer", "--audience", "a", "h"], "expected NS/NAME"),
    (["ssh", "--serviceaccount", "ops/deployer", "--audience", "a", "--duration", "10 m", "h"], "--duration"),
    (["ssh", "--token-file", "", "h"], "--token-file: empty"),
])
def test_plugin_usage_errors(plugin, args, message):
    p = plugin.run(*args)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr.decode()
    assert "kubectl k8stoken --help" in p.stderr.decode()
    assert not plugin.record.exists() and not plugin.kubectl_record.exists()
    assert plugin.leftovers() == []


def check_wiring(plugin, rec, token, parts=True):
    assert rec["sha256"] == sha(token)
    assert rec["token_in_env"] is False and rec["token_in_argv"] is False
    tf = rec["env"]["K8STOKEN_FILE"]
    assert tf.startswith(str(plugin.run_dir) + "/")
    assert rec["file_mode"] == 0o600 and rec["file_regular"] and rec["file_uid"] == os.geteuid()
    assert rec["env"]["K8STOKEN"] is None
    assert not os.path.exists(tf)
    assert plugin.leftovers() == []
    if parts:
        assert all(n <= 500 for n in rec["asked"]) and rec["asked"][-1] == 0


@pytest.mark.parametrize("suffix", ["", "\n", "\r\n"])
def test_plugin_ssh_with_token_file(plugin, tmp_path, suffix):
    token = make_jwt(1515, "RS256-4096")
    tf = write_token(tmp_path, token, suffix=suffix)
    p = plugin.run("ssh", "--token-file", str(tf), "-p", "2222", "alice@127.0.0.1", "uptime",
                   env={"K8STOKEN": "eyJsomething-else"})
    assert p.returncode == 0, p.stderr
    rec = plugin.wait_record()
    assert rec["prog"] == "ssh"
    assert rec["argv"] == SSH_OPTS + ["-p", "2222", "alice@127.0.0.1", "uptime"]
    assert rec["env"]["SSH_ASKPASS"] == os.path.realpath(plugin.bin) + "/k8stoken-askpass"
    assert rec["env"]["SSH_ASKPASS_REQUIRE"] == "force"
    assert rec["env"]["DISPLAY"] is None           # OpenSSH 9.2 needs none with "force"
    assert rec["asked"] == [500, 500, 500, 15, 0]
    check_wiring(plugin, rec, token)
    assert not plugin.kubectl_record.exists()        # --token-file: kubectl not run
    assert tf.read_bytes() == (token + suffix).encode()   # the caller's file is left alone


def test_plugin_ssh_with_key_offers_the_key_first(plugin, tmp_path):
    """For AuthenticationMethods publickey,keyboard-interactive (key AND token)."""
    token = make_jwt(930)
    tf = write_token(tmp_path, token)
    p = plugin.run("ssh", "--with-key", "--token-file", str(tf), "alice@127.0.0.1")
    assert p.returncode == 0, p.stderr
    rec = plugin.wait_record()
    assert rec["argv"][:2] == ["-o", "PreferredAuthentications=publickey,keyboard-interactive"]
    assert rec["argv"][2:] == SSH_OPTS[2:] + ["alice@127.0.0.1"]
    check_wiring(plugin, rec, token)


def test_plugin_sudo_with_token_file(plugin, tmp_path):
    token = make_jwt(1174)
    tf = write_token(tmp_path, token)
    p = plugin.run("sudo", "--token-file=" + str(tf), "-u", "bob", "--", "id", "-u")
    assert p.returncode == 0, p.stderr
    rec = plugin.wait_record()
    assert rec["prog"] == "sudo"
    assert rec["argv"] == ["-A", "-u", "bob", "--", "id", "-u"]
    assert rec["env"]["SUDO_ASKPASS"].endswith("/k8stoken-askpass")
    assert rec["env"]["SSH_ASKPASS"] is None
    assert rec["asked"] == [500, 500, 174, 0]
    check_wiring(plugin, rec, token)


def test_plugin_token_from_stdin(plugin):
    token = make_jwt(930)
    p = plugin.run("ssh", "--token-file", "-", "h", input=(token + "\n").encode())
    assert p.returncode == 0, p.stderr
    check_wiring(plugin, plugin.wait_record(), token)


@pytest.mark.parametrize("content", ["", "\n", "not a token!\n", "eyJa\neyJb\n", "eyJ abc"])
def test_plugin_malformed_token_file(plugin, tmp_path, content):
    tf = write_token(tmp_path, content, "bad")
    p = plugin.run("ssh", "--token-file", str(tf), "h")
    assert p.returncode == 1
    assert b"empty or malformed" in p.stderr
    assert content.encode().strip() == b"" or content.encode().strip() not in p.stderr
    assert not plugin.record.exists() and plugin.leftovers() == []


def test_plugin_missing_token_file(plugin, tmp_path):
    p = plugin.run("ssh", "--token-file", str(tmp_path / "nope"), "h")
    assert p.returncode == 1 and b"cannot read token file" in p.stderr
    assert not plugin.record.exists() and plugin.leftovers() == []


def test_plugin_exit_status_is_the_clients(plugin, tmp_path):
    tf = write_token(tmp_path, make_jwt(930))
    for cmd, rest in (("ssh", ["h"]), ("sudo", ["true"])):
        plugin.record.unlink(missing_ok=True)
        p = plugin.run(cmd, "--token-file", str(tf), *rest, env={"FAKE_RC": "7"})
        assert p.returncode == 7
        assert plugin.leftovers() == []


def test_plugin_mints_with_kubectl(plugin, tmp_path):
    token = make_jwt(1174)
    tf = write_token(tmp_path, token)          # what the fake kubectl prints (no newline, as on a pipe)
    p = plugin.run("ssh", "--serviceaccount", "ops/deployer", "--audience", "ssh://bastion-1",
                   "deploy@bastion-1", env={"FAKE_KUBECTL_TOKEN": str(tf)})
    assert p.returncode == 0, p.stderr
    assert json.loads(plugin.kubectl_record.read_text()) == [
        "create", "token", "deployer", "--namespace=ops", "--audience=ssh://bastion-1", "--duration=10m"]
    rec = plugin.wait_record()
    assert rec["argv"] == SSH_OPTS + ["deploy@bastion-1"]
    check_wiring(plugin, rec, token)


def test_plugin_mint_defaults_from_env_and_options(plugin, tmp_path):
    token = make_jwt(930)
    tf = write_token(tmp_path, token, suffix="\n")
    env = {"FAKE_KUBECTL_TOKEN": str(tf), "K8STOKEN_SERVICEACCOUNT": "robot",
           "K8STOKEN_AUDIENCE": "-weird-aud", "K8STOKEN_DURATION": "1h"}
    p = plugin.run("sudo", "--kubeconfig", "/etc/kube.conf", "--context=prod", "systemctl", "restart", "x",
                   env=env)
    assert p.returncode == 0, p.stderr
    assert json.loads(plugin.kubectl_record.read_text()) == [
        "create", "token", "robot", "--audience=-weird-aud", "--duration=1h",
        "--kubeconfig=/etc/kube.conf", "--context=prod"]
    rec = plugin.wait_record()
    assert rec["argv"] == ["-A", "systemctl", "restart", "x"]
    check_wiring(plugin, rec, token)
    # options win over the environment
    plugin.record.unlink()
    p = plugin.run("ssh", "--serviceaccount=ns1/sa1", "--audience=aud1", "--duration=20m", "h", env=env)
    assert p.returncode == 0, p.stderr
    assert json.loads(plugin.kubectl_record.read_text()) == [
        "create", "token", "sa1", "--namespace=ns1", "--audience=aud1", "--duration=20m"]


def test_plugin_mint_failure(plugin):
    p = plugin.run("ssh", "--serviceaccount", "ops/x", "--audience", "a", "h",
                   env={"FAKE_KUBECTL_FAIL": "1"})
    assert p.returncode == 1
    assert b"serviceaccounts \"x\" not found" in p.stderr          # kubectl's own message
    assert b"could not mint a token for ServiceAccount ops/x" in p.stderr
    assert not plugin.record.exists() and plugin.leftovers() == []


def test_plugin_finds_askpass(plugin, tmp_path, askpass):
    token = make_jwt(930)
    tf = write_token(tmp_path, token)
    # not next to the plugin: from PATH
    other = tmp_path / "other"
    other.mkdir()
    os.symlink(PLUGIN, other / "kubectl-k8stoken")
    e = dict(plugin.env)
    p = subprocess.run([str(other / "kubectl-k8stoken"), "ssh", "--token-file", str(tf), "h"], env=e,
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    rec = plugin.wait_record()
    assert rec["env"]["SSH_ASKPASS"] == str(plugin.bin / "k8stoken-askpass")
    check_wiring(plugin, rec, token)
    # K8STOKEN_ASKPASS wins; a relative one is made absolute
    plugin.record.unlink()
    os.symlink(askpass, tmp_path / "my-askpass")
    p = subprocess.run([str(other / "kubectl-k8stoken"), "ssh", "--token-file", str(tf), "h"],
                       env=dict(e, K8STOKEN_ASKPASS="my-askpass"), cwd=tmp_path, capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert plugin.wait_record()["env"]["SSH_ASKPASS"] == os.path.realpath(tmp_path) + "/my-askpass"
    # nowhere: a PATH of only the tools the plugin needs (an installed /usr/bin/k8stoken-askpass
    # must not be found either)
    plugin.record.unlink()
    os.unlink(plugin.bin / "k8stoken-askpass")
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("dirname", "basename", "mktemp", "cat", "awk", "rm"):
        os.symlink(shutil.which(tool, path="/usr/bin:/bin"), tools / tool)
    p = subprocess.run([str(other / "kubectl-k8stoken"), "ssh", "--token-file", str(tf), "h"],
                       env=dict(e, PATH=f"{plugin.bin}:{tools}"), capture_output=True, timeout=30)
    assert p.returncode == 1 and b"k8stoken-askpass not found" in p.stderr
    assert not plugin.record.exists() and plugin.leftovers() == []


def test_plugin_temp_dir_fallback(plugin, tmp_path):
    token = make_jwt(930)
    tf = write_token(tmp_path, token)
    p = plugin.run("ssh", "--token-file", str(tf), "h", env={"XDG_RUNTIME_DIR": str(tmp_path / "absent")})
    assert p.returncode == 0, p.stderr
    rec = plugin.wait_record()
    assert os.path.dirname(rec["env"]["K8STOKEN_FILE"]) == "/tmp"
    assert rec["file_mode"] == 0o600 and not os.path.exists(rec["env"]["K8STOKEN_FILE"])


def test_plugin_cleans_up_when_ssh_is_killed(plugin, tmp_path):
    tf = write_token(tmp_path, make_jwt(930))
    proc = plugin.popen("ssh", "--token-file", str(tf), "h", env={"FAKE_MODE": "hang"})
    rec = plugin.wait_record()
    assert os.path.exists(rec["env"]["K8STOKEN_FILE"])
    os.kill(rec["pid"], signal.SIGTERM)
    assert proc.wait(20) == 128 + signal.SIGTERM
    assert not os.path.exists(rec["env"]["K8STOKEN_FILE"]) and plugin.leftovers() == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_plugin_cleans_up_when_it_is_signalled(plugin, tmp_path, sig):
    """The plugin itself gets the signal (e.g. its terminal goes away: the whole group)."""
    tf = write_token(tmp_path, make_jwt(930))
    proc = plugin.popen("ssh", "--token-file", str(tf), "h", env={"FAKE_MODE": "hang"})
    rec = plugin.wait_record()
    os.killpg(proc.pid, sig)
    rc = proc.wait(20)
    assert rc == -sig, proc.stderr.read()
    assert not os.path.exists(rec["env"]["K8STOKEN_FILE"]) and plugin.leftovers() == []


def test_plugin_via_kubectl_against_the_test_apiserver(tmp_path, askpass):
    """`kubectl k8stoken ssh …` for real: kubectl finds the plugin in PATH, the plugin mints with
    `kubectl create token` (the version dispatcher, private HOME), the fake ssh reassembles the
    token from the askpass, and the test API server accepts it for audience pam-test."""
    assert os.access(KUBECTL, os.X_OK), f"{KUBECTL} not installed (tests/install-deps.sh)"
    plugin = Plugin(tmp_path, askpass, fake_kubectl=False)
    with ktest.ApiServer().start(str(tmp_path / "api"), key="rs256-4096") as srv:
        srv.create_sa("pam", "pam-user")
        env = dict(plugin.env, KUBECONFIG=srv.kubeconfig,
                   PATH=f"{plugin.bin}:{os.path.dirname(KUBECTL)}:/bin")
        p = subprocess.run([KUBECTL, "k8stoken", "ssh", "--serviceaccount", "pam/pam-user",
                            "--audience", "pam-test", "alice@127.0.0.1", "id"],
                           env=env, capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr
        rec = plugin.wait_record()
        assert rec["argv"] == SSH_OPTS + ["alice@127.0.0.1", "id"]
        token = (tmp_path / "record.json.token").read_text()
        assert len(token) > 1000 and len(rec["asked"]) >= 4
        check_wiring(plugin, rec, token)
        status, review = srv.token_review(token, audiences=["pam-test"])
        assert status == 201, review
        assert review["status"]["authenticated"] is True
        assert review["status"]["user"]["username"] == "system:serviceaccount:pam:pam-user"
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert claims["exp"] - claims["iat"] == 600
        # a wrong ServiceAccount: kubectl's error, exit 1, nothing left behind
        plugin.record.unlink()
        p = subprocess.run([KUBECTL, "k8stoken", "ssh", "--serviceaccount", "pam/nobody",
                            "--audience", "pam-test", "alice@127.0.0.1"],
                           env=env, capture_output=True, timeout=120)
        assert p.returncode == 1
        assert b"not found" in p.stderr and b"could not mint a token" in p.stderr
        assert not plugin.record.exists() and plugin.leftovers() == []


# --- the kubectl plugin: --password -----------------------------------------------------------------

def test_plugin_ssh_password_opt_in(plugin, tmp_path):
    """--password: ssh also tries the password method, and the askpass answers its prompt with
    the whole token (930 characters fit in one ssh answer)."""
    token = make_jwt(930)
    tf = write_token(tmp_path, token)
    p = plugin.run("ssh", "--password", "--token-file", str(tf), "-p", "2222", "alice@127.0.0.1",
                   env={"FAKE_PASSWORD_PROMPT": SSH_PASSWORD})
    assert p.returncode == 0, p.stderr
    rec = plugin.wait_record()
    assert rec["argv"] == ["-o", "PreferredAuthentications=keyboard-interactive,password",
                           "-o", "KbdInteractiveAuthentication=yes",
                           "-o", "NumberOfPasswordPrompts=1", "-o", "PasswordAuthentication=yes",
                           "-p", "2222", "alice@127.0.0.1"]
    assert rec["env"]["K8STOKEN_ANSWER_PASSWORD"] == "1"
    assert rec["asked"] == [930]
    check_wiring(plugin, rec, token, parts=False)


def test_plugin_ssh_password_with_key(plugin, tmp_path):
    tf = write_token(tmp_path, make_jwt(930))
    p = plugin.run("ssh", "--with-key", "--password", "--token-file", str(tf), "h")
    assert p.returncode == 0, p.stderr
    rec = plugin.wait_record()
    assert rec["argv"][:2] == ["-o", "PreferredAuthentications=publickey,keyboard-interactive,password"]
    assert rec["env"]["K8STOKEN_ANSWER_PASSWORD"] == "1"


def test_plugin_password_opt_in_refuses_a_long_token(plugin, tmp_path):
    """A pod-bound-sized token (1,174) does not fit ssh's one answer: the askpass says so and
    answers nothing (ssh would send an empty password)."""
    token = make_jwt(1174)
    tf = write_token(tmp_path, token)
    p = plugin.run("ssh", "--password", "--token-file", str(tf), "h",
                   env={"FAKE_PASSWORD_PROMPT": SSH_PASSWORD})
    assert p.returncode == 0, p.stderr
    rec = plugin.wait_record()
    assert rec["asked"] == [0]
    assert p.stderr.decode() == too_long_message(1174, 1023) + "\n"


def test_plugin_sudo_password_opt_in(plugin, tmp_path):
    token = make_jwt(620, "ES256")
    tf = write_token(tmp_path, token)
    p = plugin.run("sudo", "--password", "--token-file", str(tf), "id",
                   env={"FAKE_PASSWORD_PROMPT": SUDO_PASSWORD})
    assert p.returncode == 0, p.stderr
    rec = plugin.wait_record()
    assert rec["argv"] == ["-A", "id"]
    assert rec["env"]["K8STOKEN_ANSWER_PASSWORD"] == "1"
    assert rec["asked"] == [0]                       # 620 > sudo's 511
    assert p.stderr.decode() == too_long_message(620, 511) + "\n"


@pytest.mark.parametrize("cmd", ["ssh", "sudo"])
def test_plugin_without_password_option_turns_the_opt_in_off(plugin, tmp_path, cmd):
    """A K8STOKEN_ANSWER_PASSWORD=1 in the caller's environment does not reach the askpass:
    only --password turns it on."""
    tf = write_token(tmp_path, make_jwt(930))
    prompt = SSH_PASSWORD if cmd == "ssh" else SUDO_PASSWORD
    p = plugin.run(cmd, "--token-file", str(tf), "h",
                   env={"FAKE_PASSWORD_PROMPT": prompt, "K8STOKEN_ANSWER_PASSWORD": "1"})
    assert p.returncode == 0, p.stderr
    rec = plugin.wait_record()
    assert rec["env"]["K8STOKEN_ANSWER_PASSWORD"] == "0"
    assert rec["asked"] == [0]
    assert p.stderr.decode() == NOT_ANSWERED + OPT_IN_HINT + "\n"
    if cmd == "ssh":
        assert rec["argv"] == SSH_OPTS + ["h"]


def test_plugin_help_names_password(plugin):
    text = plugin.run("--help").stdout.decode()
    for word in ("--password", "K8STOKEN_ANSWER_PASSWORD=1", "1023", "511", "use_first_pass"):
        assert word in text, word
