"""Token entry in several parts (docs/design.md §5): the module keeps asking
"Kubernetes token (part N): " while the joined answers are the unfinished start of a
token, and only then."""
import pytest

from harness import AUDIENCE

TR = "/apis/authentication.k8s.io/v1/tokenreviews"
FIRST = "off Kubernetes token: "


def part_prompt(n):
    return f"off Kubernetes token (part {n}): "


def split(token, size):
    return [token[i:i + size] for i in range(0, len(token), size)]


def reviews(h):
    return h.api.requests()["counts"].get(TR, 0)


def assert_outcome(r, code, reason):
    assert r.code == code, r
    d = r.decision()
    assert d is not None and d["reason"] == reason, r


def long_token(h, length):
    """A real, valid token of at least `length` characters (padded with a claim)."""
    base = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE])
    return h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE],
                  claims_override={"zz": "p" * max(0, (length - len(base)) * 3 // 4 + 4)})


@pytest.mark.parametrize("size", [500, 511, 1023])
@pytest.mark.parametrize("length", [1174, 2100])
def test_parts_join_to_the_token(h, size, length):
    token = long_token(h, length)
    parts = split(token, size)
    if len(parts[-1]) == 0:
        parts.pop()
    r = h.run("alice", parts)
    assert_outcome(r, "PAM_SUCCESS", "ok")
    expected = [FIRST] + [part_prompt(n) for n in range(2, len(parts) + 1)]
    if size in (511, 1023):
        expected[1] = (f"off Kubernetes token (part 2) - part 1 had {size} characters, probably "
                       "cut there by your client; send the rest: ")
    assert r.prompts == expected


def test_whole_token_needs_no_second_prompt(h):
    r = h.run("alice", h.token())
    assert_outcome(r, "PAM_SUCCESS", "ok")
    assert r.prompts == [FIRST]


def test_password_gets_no_second_prompt(h):
    r = h.run("alice", ["hunter2", "should-never-be-asked"])
    assert r.prompts == [FIRST]
    assert_outcome(r, "PAM_AUTH_ERR", "not_jwt")   # no ignore_non_token: refused


def test_empty_answer_ends_an_unfinished_token(h):
    token = long_token(h, 1200)
    h.api.reset_requests()
    r = h.run("alice", [token[:500], ""])
    assert_outcome(r, "PAM_AUTH_ERR", "incomplete_token")
    assert r.prompts == [FIRST, part_prompt(2)]
    assert reviews(h) == 0


def test_no_answer_ends_an_unfinished_token(h):
    token = long_token(h, 1200)
    r = h.run("alice", [token[:500]])
    assert_outcome(r, "PAM_AUTH_ERR", "incomplete_token")


def test_same_answer_every_time_is_refused(h):
    """sshd's password method answers every prompt with the same text."""
    token = long_token(h, 1200)
    h.api.reset_requests()
    r = h.run("alice", [token[:600]] * 5)
    # the header and payload again inside the signature: no longer a token's start
    assert_outcome(r, "PAM_AUTH_ERR", "not_jwt")
    assert len(r.prompts) == 2
    assert reviews(h) == 0


def test_parts_stop_at_max_token_size(h):
    h.write_conf(extra="max_token_size = 1024")
    token = long_token(h, 2100)
    h.api.reset_requests()
    r = h.run("alice", split(token, 500))
    assert_outcome(r, "PAM_AUTH_ERR", "token_too_long")
    assert len(r.prompts) == 3          # 500 + 500 + 500 > 1024: no fourth prompt
    assert reviews(h) == 0


def test_parts_stop_after_64_answers(h):
    """One character per part would otherwise mean thousands of round trips."""
    token = long_token(h, 1200)
    r = h.run("alice", [token[:3]] + list(token[3:103]))   # then 100 one-character answers
    assert len(r.prompts) == 64
    assert_outcome(r, "PAM_AUTH_ERR", "incomplete_token")


def test_rsa_4096_token_not_judged_complete_early(h, tmp_path):
    """A 4096-bit signature passes the 2048- and 3072-bit lengths on its way."""
    import ktest
    from harness import Harness
    api = ktest.ApiServer()
    api.start(str(tmp_path / "api"), key="rs256-4096")
    try:
        h4 = Harness(api, str(tmp_path))
        h4.ensure_sa("pam", "pam-user")
        token = h4.token()
        sig_start = token.rindex(".") + 1
        # cut part 1 exactly where the signature has the length of a 3072-bit one (512
        # characters, no leftover bits: always a valid encoding)
        cut = sig_start + 512
        r = h4.run("alice", [token[:cut], token[cut:]])
        # the module stopped at a complete-looking token, which the server refuses
        assert_outcome(r, "PAM_AUTH_ERR", "unauthenticated")
        assert len(r.prompts) == 1
        r = h4.run("alice", [token[:cut - 1], token[cut - 1:]])
        assert_outcome(r, "PAM_SUCCESS", "ok")
        assert len(r.prompts) == 2
        h4.check_reports()
        h4.scan_for_secrets()

    finally:
        api.stop()
