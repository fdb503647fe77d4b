"""k8stoken check and k8stoken selftest (docs/design.md §9): same decisions as the module,
clear output, exit codes 0 allow/healthy, 1 deny, 2 unavailable, 3 usage/config.
In the sanitizer and valgrind passes the tool and the helper it runs are checked too
(harness.tool_command): any report fails the test."""
import os
import subprocess

import pytest


def tool(h, *args, stdin=""):
    proc = subprocess.run(h.tool_command([*args, "--conf", h.conf, "--helper", h.helper]),
                          input=stdin, text=True, capture_output=True, env=h.tool_env(),
                          timeout=120)
    h.captured += [proc.stdout, proc.stderr]
    return proc


def test_check_allows_mapped_token(h):
    proc = tool(h, "check", "--user", "alice", stdin=h.token() + "\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "decision:        allow (ok)" in proc.stdout
    assert "serviceaccount:  pam/pam-user" in proc.stdout
    assert "local user:      alice (uid 1001)" in proc.stdout


def test_check_denies_other_user(h):
    proc = tool(h, "check", "--user", "bob", stdin=h.token())
    assert proc.returncode == 1
    assert "deny (not_mapped)" in proc.stdout


def test_check_without_user_judges_the_token_only(h):
    proc = tool(h, "check", stdin=h.token())
    assert proc.returncode == 0
    assert "token accepted" in proc.stdout and "mapping rules not evaluated" in proc.stdout


def test_check_reports_outage(h):
    h.api.add_fault(status=503, times=1)
    proc = tool(h, "check", "--user", "alice", stdin=h.token())
    assert proc.returncode == 2
    assert "deny (http_status)" in proc.stdout


def test_check_reports_an_over_long_token(h):
    h.write_conf(extra="max_token_size = 1024")
    proc = tool(h, "check", "--user", "alice", stdin="a" * 5000)
    assert proc.returncode == 1
    assert "deny (token_too_long)" in proc.stdout


def test_check_refuses_bad_config(h):
    os.chmod(h.conf, 0o666)
    proc = tool(h, "check", "--user", "alice", stdin=h.token())
    assert proc.returncode == 3
    assert f"configuration refused: {h.conf} is writable by group or others" in proc.stderr


def test_selftest_healthy(h):
    proc = tool(h, "selftest")
    assert proc.returncode == 0, proc.stdout
    assert "reviewer may create tokenreviews" in proc.stdout
    assert "1 of 1 servers healthy" in proc.stdout


def test_selftest_reviewer_without_rbac(h):
    # a valid caller of the API (default audience) that has no RBAC right to review
    h._write_private(h.reviewer_file, h.token(ns="pam", name="not-a-reviewer", audiences=()))
    proc = tool(h, "selftest")
    assert proc.returncode == 2
    assert "reviewer credential was refused (HTTP 403)" in proc.stdout


def test_selftest_names_each_server(h):
    h.write_conf(servers=[h.api.url, "https://127.0.0.1:1"])
    proc = tool(h, "selftest")
    assert proc.returncode == 2
    assert f"ok    {h.api.url}" in proc.stdout
    assert "FAIL  https://127.0.0.1:1: transport" in proc.stdout
    assert "1 of 2 servers healthy" in proc.stdout


@pytest.mark.parametrize("args,message", [
    ([], "usage: k8stoken"), (["frobnicate"], "usage: k8stoken"),
    (["check", "--bogus"], "unexpected argument"),
])
def test_usage_errors(h, args, message):
    proc = subprocess.run(h.tool_command(args), capture_output=True, text=True,
                          env=h.tool_env(), timeout=120)
    h.captured += [proc.stdout, proc.stderr]
    assert proc.returncode == 3, proc
    assert message in proc.stderr, proc.stderr
