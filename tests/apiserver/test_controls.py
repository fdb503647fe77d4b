"""The /_test/ control API: faults, clock, request log, mint, config, and the ctl wrapper."""
import http.client
import json
import os
import subprocess
import time

import pytest

import tokens
from ktest import TOKENREVIEWS

CTL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ctl")


def raw_post(srv, path=TOKENREVIEWS, body=b'{"spec":{"token":"abc"}}', timeout=30):
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=srv.ssl_context(), timeout=timeout)
    conn.request("POST", path, body, {"Authorization": "Bearer " + srv.reviewer_token})
    return conn, conn.getresponse()


def test_control_needs_admin(fresh):
    assert fresh.call("GET", "/_test/requests", token="")[0] == 401
    status, obj = fresh.call("GET", "/_test/requests", token=fresh.reviewer_token)
    assert status == 403 and obj["reason"] == "Forbidden"


def test_status_with_retry_after_and_times(fresh):
    fresh.add_fault(status=503, headers={"Retry-After": "30"}, times=2)
    for _ in range(2):
        status, headers, body = fresh.request("POST", TOKENREVIEWS, b'{"spec":{"token":"a"}}', fresh.reviewer_token)
        assert status == 503 and headers["retry-after"] == "30" and json.loads(body)["code"] == 503
    assert fresh.token_review("a")[0] == 201


def test_body_override_and_content_type(fresh):
    fresh.add_fault(body='{"kind": "TokenReview", "status": {"authenticated": "yes"', content_type="text/html", times=1)
    status, headers, body = fresh.request("POST", TOKENREVIEWS, b'{"spec":{"token":"a"}}', fresh.reviewer_token)
    assert status == 201 and headers["content-type"] == "text/html" and body.endswith(b'"yes"')
    fresh.add_fault(body_b64="AAEC", status=200, times=1)
    assert fresh.request("POST", TOKENREVIEWS, b"{}", fresh.reviewer_token)[2] == b"\x00\x01\x02"


def test_latency(fresh):
    fresh.add_fault(latency_ms=700, times=1)
    start = time.monotonic()
    status, obj = fresh.token_review("abc")
    assert time.monotonic() - start >= 0.7 and status == 201 and obj["status"]["error"] == "invalid bearer token"


def test_redirect(fresh):
    fresh.add_fault(redirect="https://127.0.0.1:1/elsewhere", times=1)
    status, headers, _ = fresh.request("POST", TOKENREVIEWS, b"{}", fresh.reviewer_token)
    assert status == 302 and headers["location"] == "https://127.0.0.1:1/elsewhere"


def test_huge_chunked_body_is_streamed(fresh):
    size = 50 * 1024 * 1024
    fresh.add_fault(status=200, chunked=True, body_size=size, body='{"a":"', times=1)
    conn, resp = raw_post(fresh)
    assert resp.getheader("Transfer-Encoding") == "chunked" and resp.getheader("Content-Length") is None
    total, first = 0, resp.read(6)
    total += len(first)
    while chunk := resp.read(1 << 20):
        total += len(chunk)
    assert first == b'{"a":"' and total == size
    conn.close()


def test_trickle(fresh):
    fresh.add_fault(status=200, body="abcd", trickle_bps=2, times=1)
    start = time.monotonic()
    conn, resp = raw_post(fresh)
    assert resp.read() == b"abcd"
    assert time.monotonic() - start >= 1.4
    conn.close()


def test_reset_before_response_and_mid_body(fresh):
    fresh.add_fault(reset="before_response", times=1)
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected, OSError)):
        raw_post(fresh)
    fresh.add_fault(status=200, body="x" * 100000, reset="mid_body", times=1)
    conn, resp = raw_post(fresh)
    assert resp.getheader("Content-Length") == "100000"
    with pytest.raises((ConnectionError, http.client.IncompleteRead, OSError)):
        resp.read()
    fresh.add_fault(close_without_response=True, times=1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        raw_post(fresh)
    assert fresh.token_review("abc")[0] == 201


def test_wildcard_path_and_clear(fresh):
    fresh.add_fault(path="*", status=500)
    assert fresh.call("GET", "/version")[0] == 500
    fresh.clear_faults()
    assert fresh.call("GET", "/version")[0] == 200


def test_request_log(fresh):
    fresh.token_review("abc", ["aud-1"])
    fresh.token_review("def")
    log = fresh.requests()
    assert log["counts"] == {TOKENREVIEWS: 2}
    last = log["last"][-2]
    assert last["method"] == "POST" and last["path"] == TOKENREVIEWS and last["query"] == ""
    assert last["headers"]["authorization"] == "Bearer " + fresh.reviewer_token
    assert json.loads(last["body"])["spec"] == {"token": "abc", "audiences": ["aud-1"]}
    fresh.reset_requests()
    assert fresh.requests() == {"counts": {}, "last": []}


def test_clock_affects_issuing(fresh):
    fresh.set_clock_offset(-86400)
    token = fresh.token_request("default", "default", ["x"], 600)
    claims = json.loads(tokens.b64url_decode(token.split(".")[1]))
    assert abs(claims["iat"] - (time.time() - 86400)) < 5


def test_mint_without_sa_and_without_jti(fresh):
    token = fresh.mint(namespace="ghosts", name="casper", create_sa=False, jti=False)
    assert fresh.token_review(token)[1]["status"]["error"] == '[invalid bearer token, serviceaccounts "casper" not found]'
    token = fresh.mint(namespace="pam", name="nojti", jti=False)
    assert "extra" not in fresh.token_review(token)[1]["status"]["user"]


def test_ctl(fresh):
    def ctl(*args):
        return subprocess.run([CTL, fresh.state_dir, *args], capture_output=True, text=True, timeout=30)
    assert json.loads(ctl("create-sa", "ctlns", "bob").stdout)["metadata"]["name"] == "bob"
    token = ctl("token", "ctlns", "bob", "pam", "600").stdout
    assert token.count(".") == 2 and not token.endswith("\n")
    assert fresh.token_review(token, ["pam"])[1]["status"]["authenticated"] is True
    assert "id" in json.loads(ctl("fault", '{"path": "/version", "status": 404, "times": 1}').stdout)
    assert fresh.call("GET", "/version")[0] == 404
    assert ctl("clock", "30").returncode == 0 and fresh.call("GET", "/_test/clock")[1]["offset_seconds"] == 30
    minted = ctl("mint", '{"namespace": "ctlns", "name": "bob", "exp_offset": -100}').stdout
    assert "expired" in fresh.token_review(minted)[1]["status"]["error"]
    assert json.loads(ctl("requests").stdout)["counts"]
    assert ctl("reset-requests").returncode == 0 and ctl("clear-faults").returncode == 0
    assert ctl("delete-sa", "ctlns", "bob").returncode == 0
    result = ctl("delete-sa", "ctlns", "bob")
    assert result.returncode == 1 and "NotFound" in result.stderr
    assert ctl("bogus").returncode == 2
