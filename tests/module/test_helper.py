"""The module's side of the helper process model (PRODUCT §2): fixed environment, token
on stdin only, no inherited descriptors, a deadline the module enforces by killing its
own child, and a denial whenever the helper misbehaves."""
import hashlib
import json
import os
import time

import pytest

from harness import TIMED

FAKE_HELPERS = {
    # records what it was given, then answers "not authenticated"-free garbage
    "recorder": """#!/usr/bin/python3 -I
import hashlib, json, os, sys
fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
record = {"env": dict(os.environ), "argv": sys.argv[1:], "fds": fds,
          "stdin_sha256": hashlib.sha256(sys.stdin.buffer.read()).hexdigest()}
with open("$OUT/record.json", "w") as f:
    json.dump(record, f)
print("garbage")
""",
    "sleeper": """#!/bin/sh
echo $$ > "$OUT/pid"
exec sleep 100
""",
    "truncated": """#!/bin/sh
cat > /dev/null
printf 'kt-review/1\\nreason ok\\nhttp 201\\nserver 0\\ndetail \\nbody 100\\n{"kind":'
""",
    "liar": """#!/bin/sh
cat > /dev/null
printf 'kt-review/1\\nreason ok\\nhttp 201\\nserver 0\\ndetail \\nbody 2\\n{}end\\n'
""",
}


@pytest.fixture
def fake(h):
    def install(name):
        out = os.path.join(h.tmp, "out")
        os.makedirs(out, exist_ok=True)
        path = os.path.join(h.tmp, name)
        with open(path, "w") as f:
            f.write(FAKE_HELPERS[name].replace("$OUT", out))
        os.chmod(path, 0o755)
        h.write_service(args=f"helper={path}")
        return out
    return install


def test_helper_gets_fixed_env_token_on_stdin_and_no_descriptors(h, fake):
    out = fake("recorder")
    token = h.token()
    r = h.run("alice", token, extra_env={"https_proxy": "http://127.0.0.1:9", "SECRET": "x"})
    assert r.code == "PAM_AUTHINFO_UNAVAIL"
    assert r.decision()["reason"] == "helper_failed"
    record = json.load(open(os.path.join(out, "record.json")))
    record["env"].pop("LC_CTYPE", None)  # added by the Python interpreter itself
    assert record["env"] == {"PATH": "/usr/bin:/bin", "LANG": "C"}
    assert record["argv"] == ["--conf", h.conf]
    assert record["stdin_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert record["fds"][:3] == [0, 1, 2] and len(record["fds"]) == 4  # + the listdir handle


def test_module_kills_a_hanging_helper_at_its_deadline(h, fake):
    out = fake("sleeper")
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTHINFO_UNAVAIL"
    assert r.decision()["reason"] == "timeout"
    # timeout = 3 in the harness, plus 1 s for the helper
    assert not TIMED or 3.9 <= r.elapsed <= 4.6
    pid = int(open(os.path.join(out, "pid")).read())
    time.sleep(0.1)
    assert not os.path.exists(f"/proc/{pid}"), "the helper was left running"


@pytest.mark.parametrize("name", ["truncated", "liar"])
def test_broken_helper_answers_deny(h, fake, name):
    fake(name)
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTHINFO_UNAVAIL"
    assert r.decision()["reason"] in ("helper_failed", "malformed_reply")


def test_missing_helper(h):
    h.write_service(args=f"helper={h.tmp}/does-not-exist")
    r = h.run("alice", h.token())
    assert r.code == "PAM_AUTHINFO_UNAVAIL"
    assert r.decision()["reason"] == "helper_failed"
