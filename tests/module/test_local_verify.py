"""Local verification with the cluster's keys (docs/design.md §6.3, docs/security.md §1):
forged, expired and misdirected tokens are refused on the host with no request at all; the
key set comes from OIDC discovery (or jwks_file), is kept sealed in the cache directory and
refetched at most once a minute host-wide. Every test asserts the PAM code, the decision's
reason and what reached the test API server."""
import base64
import json
import os
import shutil
import tempfile
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

import ktest
import tokens
from harness import AUDIENCE

TR = "/apis/authentication.k8s.io/v1/tokenreviews"
DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/openid/v1/jwks"
ISSUER = "https://kubernetes.default.svc.cluster.local"


def expect(r, code, reason):
    d = r.decision()
    assert d is not None, r
    assert (r.code, d["reason"]) == (code, reason), r
    return d


def counts(h):
    c = h.api.requests()["counts"]
    return c.get(TR, 0), c.get(DISCOVERY, 0), c.get(JWKS, 0)


def warnings(r):
    return [l for l in r.log_lines() if l.startswith("local verification unavailable")]


@pytest.fixture
def auto(h):
    """The product's default (local_verify = auto), the keys fetched by a first login."""
    h.write_conf(local_verify=None)
    h.api.reset_requests()
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")
    assert counts(h) == (1, 1, 1)
    h.api.reset_requests()
    return h


def server_kid(h):
    return h.api.set_config()["kid"]


# --- every reason, no request ----------------------------------------------------------------

def test_genuine_token_is_reviewed_once_keys_are_cached(auto):
    h = auto
    d = expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")
    assert d["sa"] == "pam/pam-user"
    assert counts(h) == (1, 0, 0)   # the key set came from the cache directory


def test_wrong_key_with_the_clusters_kid_is_bad_signature(auto):
    h = auto
    forged = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], key="other",
                    kid=server_kid(h))
    expect(h.run("alice", forged), "PAM_AUTH_ERR", "bad_signature")
    assert counts(h) == (0, 0, 0)


def test_tampered_payload_is_bad_signature(auto):
    h = auto
    header, payload, sig = h.token().split(".")
    claims = json.loads(tokens.b64url_decode(payload))
    claims["sub"] = "system:serviceaccount:kube-system:admin"
    forged = ".".join([header, tokens.b64url(json.dumps(claims).encode()), sig])
    h.secrets.append(forged)
    expect(h.run("alice", forged), "PAM_AUTH_ERR", "bad_signature")
    assert counts(h) == (0, 0, 0)


def test_alg_kube_never_signs_with_is_bad_signature(auto):
    """RS384 passes the shape check (token.c) but is no algorithm kube-apiserver signs with."""
    h = auto
    header, payload, sig = h.token().split(".")
    forged = ".".join([tokens.b64url(b'{"alg":"RS384","kid":"%s"}' % server_kid(h).encode()),
                       payload, sig])
    h.secrets.append(forged)
    expect(h.run("alice", forged), "PAM_AUTH_ERR", "bad_signature")
    assert counts(h) == (0, 0, 0)


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_none_and_hmac_never_reach_the_keys(auto, alg):
    h = auto
    _, payload, sig = h.token().split(".")
    forged = ".".join([tokens.b64url(b'{"alg":"%s"}' % alg.encode()), payload, sig])
    h.secrets.append(forged)
    expect(h.run("alice", forged), "PAM_AUTH_ERR", "not_jwt")
    assert counts(h) == (0, 0, 0)


def forget_last_fetch(h):
    """As if the last fetch of the key set were more than a minute ago (the sealed stamp
    that rate-limits fetches host-wide is removed)."""
    os.unlink(os.path.join(h.cache_dir, "jwks-fetch"))


def test_unknown_kid_is_unknown_key_after_one_refetch(auto):
    h = auto
    forget_last_fetch(h)
    tok = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], kid="no-such-key")
    expect(h.run("alice", tok), "PAM_AUTH_ERR", "unknown_key")
    assert counts(h) == (0, 1, 1)   # the refetch an unknown kid may cause


@pytest.mark.parametrize("offset, reason", [(-61 - 30, "expired"), (-3600, "expired")])
def test_expired_beyond_the_leeway(auto, offset, reason):
    h = auto
    tok = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], exp_offset=offset)
    expect(h.run("alice", tok), "PAM_AUTH_ERR", reason)
    assert counts(h) == (0, 0, 0)


def test_expired_within_the_leeway_is_still_asked(auto):
    h = auto
    tok = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], exp_offset=-20)
    expect(h.run("alice", tok), "PAM_SUCCESS", "ok")   # kube's 60 s leeway, as the server
    assert counts(h) == (1, 0, 0)


@pytest.mark.parametrize("claim", ["nbf_offset", "iat_offset"])
def test_not_yet_valid_beyond_the_leeway(auto, claim):
    h = auto
    tok = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], **{claim: 120})
    expect(h.run("alice", tok), "PAM_AUTH_ERR", "not_yet_valid")
    assert counts(h) == (0, 0, 0)


def test_issuer_mismatch(auto):
    h = auto
    tok = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE],
                 claims_override={"iss": "https://evil.example"})
    expect(h.run("alice", tok), "PAM_AUTH_ERR", "issuer_mismatch")
    assert counts(h) == (0, 0, 0)


def test_configured_issuer_replaces_the_discovered_one(auto):
    h = auto
    h.write_conf(local_verify=None, extra="issuer = https://other.example")
    expect(h.run("alice", h.token()), "PAM_AUTH_ERR", "issuer_mismatch")
    h.write_conf(local_verify=None, extra=f"issuer = https://other.example\nissuer = {ISSUER}")
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")
    assert counts(h) == (1, 0, 0)


def test_audience_mismatch(auto):
    h = auto
    tok = h.mint(namespace="pam", name="pam-user", audiences=["someone-else"])
    expect(h.run("alice", tok), "PAM_AUTH_ERR", "audience_mismatch")
    assert counts(h) == (0, 0, 0)


def test_legacy_token_is_checked_for_its_signature_only(h):
    """Its iss, aud and exp are not the cluster's to check; its signature is."""
    h.write_conf(local_verify=None, extra="allow_legacy_tokens = yes", audiences=(ISSUER,))
    h.ensure_sa("pam", "pam-user")
    status, obj = h.api.call("POST", "/api/v1/namespaces/pam/secrets", {
        "metadata": {"name": "legacy-lv", "annotations": {
            "kubernetes.io/service-account.name": "pam-user"}},
        "type": "kubernetes.io/service-account-token"})
    assert status == 201, obj
    good = base64.b64decode(obj["data"]["token"]).decode()
    h.secrets.append(good)
    expect(h.run("alice", good), "PAM_SUCCESS", "ok")
    forged = h.mint(namespace="pam", name="pam-user", legacy=True, key="other",
                    kid=server_kid(h))
    h.api.reset_requests()
    expect(h.run("alice", forged), "PAM_AUTH_ERR", "bad_signature")
    assert counts(h) == (0, 0, 0)


# --- local_verify = auto | yes | no ------------------------------------------------------------

def test_no_never_fetches_keys(h):
    h.api.reset_requests()
    forged = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], key="other",
                    kid=server_kid(h))
    expect(h.run("alice", forged), "PAM_AUTH_ERR", "unauthenticated")
    assert counts(h) == (1, 0, 0)


def test_auto_without_keys_warns_once_and_reviews_as_today(h):
    """The reviewer may not read the keys (403): one warning, then the TokenReview decides;
    the next login within a minute neither refetches nor warns again."""
    h.write_conf(local_verify=None)
    h.api.add_fault(path=DISCOVERY, status=403, body='{"kind":"Status"}')
    h.api.reset_requests()
    r = h.run("alice", h.token())
    expect(r, "PAM_SUCCESS", "ok")
    assert len(warnings(r)) == 1 and "reviewer_rejected" in warnings(r)[0], r.log_lines()
    r = h.run("alice", h.token())
    expect(r, "PAM_SUCCESS", "ok")
    assert warnings(r) == [], r.log_lines()
    assert counts(h) == (2, 1, 0)


def test_yes_without_keys_is_unavailable_without_a_review(h):
    h.write_conf(local_verify="yes")
    h.api.add_fault(path=DISCOVERY, status=403, body='{"kind":"Status"}')
    h.api.reset_requests()
    r = h.run("alice", h.token())
    d = expect(r, "PAM_AUTHINFO_UNAVAIL", "keys_unavailable")
    assert "403" in d["detail"], d
    assert counts(h) == (0, 1, 0)


# --- the key set: rotation, refetch limit, tampering, bad sets, discovery elsewhere ---------

@pytest.fixture
def own_api():
    """A test API server of this test's own: key rotation changes its signing key."""
    tmp = tempfile.mkdtemp(prefix="kt-lv-api-")
    server = ktest.ApiServer()
    server.start(tmp)
    yield server
    server.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def test_key_rotation_overlap_and_refetch_at_most_once_a_minute(h, own_api):
    from harness import Harness
    os.mkdir(os.path.join(h.tmp, "rot"))
    h2 = Harness(own_api, os.path.join(h.tmp, "rot"))
    h2.write_conf(local_verify="yes")
    try:
        old_token = h2.token()
        own_api.reset_requests()
        expect(h2.run("alice", old_token), "PAM_SUCCESS", "ok")
        assert counts(h2) == (1, 1, 1)
        old_kid = own_api.keys()["signing"]
        new_kid = own_api.add_key()["signing"]           # new key added, signs from now on
        assert own_api.keys()["kids"] == [old_kid, new_kid]
        new_token = h2.token()
        forget_last_fetch(h2)
        own_api.reset_requests()
        expect(h2.run("alice", new_token), "PAM_SUCCESS", "ok")   # unknown kid: one refetch
        expect(h2.run("alice", old_token), "PAM_SUCCESS", "ok")   # overlap: both keys
        assert counts(h2) == (2, 1, 1)
        own_api.remove_key(old_kid)                        # old key removed
        newer_kid = own_api.add_key()["signing"]
        newest_token = h2.token()
        own_api.reset_requests()
        # within the minute since the last fetch the new kid is not fetched again
        r = expect(h2.run("alice", newest_token), "PAM_AUTH_ERR", "unknown_key")
        assert newer_kid in r["detail"]
        assert counts(h2) == (0, 0, 0)
    finally:
        h.captured += h2.captured
        h.secrets += h2.secrets


def test_refetch_limit_is_host_wide(auto):
    """Two processes, two unknown kids, within a minute: one fetch between them."""
    h = auto
    forget_last_fetch(h)
    first = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], kid="unknown-1")
    second = h.mint(namespace="pam", name="pam-user", audiences=[AUDIENCE], kid="unknown-2")
    expect(h.run("alice", first), "PAM_AUTH_ERR", "unknown_key")
    expect(h.run("alice", second), "PAM_AUTH_ERR", "unknown_key")
    assert counts(h) == (0, 1, 1)


def test_tampered_key_file_is_not_used(auto):
    """A key set edited in the cache directory (the attacker's key put in) fails its MAC:
    the forged token it would vouch for is not accepted locally, and without a usable set
    local_verify = yes is unavailable."""
    h = auto
    path = os.path.join(h.cache_dir, "jwks")
    attacker = tokens.SigningKey("rs256-2048")
    text = open(path).read()
    start = text.index('{"keys"') if '{"keys"' in text else text.index("{")
    end = text.rindex("}") + 1
    text = text[:start] + json.dumps({"keys": [attacker.jwk()]}) + text[end:]
    with open(path, "w") as f:
        f.write(text)
    claims = tokens.bound_claims(ISSUER, int(time.time()), {"metadata": {
        "namespace": "pam", "name": "pam-user", "uid": "x"}}, [AUDIENCE], time.time() + 600)
    forged = tokens.encode(attacker, claims)
    h.secrets.append(forged)
    h.write_conf(local_verify="yes")
    expect(h.run("alice", forged), "PAM_AUTHINFO_UNAVAIL", "keys_unavailable")
    assert counts(h) == (0, 0, 0)


def jwks_fault(h, keys):
    h.api.add_fault(path=JWKS, status=200, content_type="application/jwk-set+json",
                    body=json.dumps({"keys": keys}))


def rsa_jwk(bits, kid="k1"):
    """An RSA JWK with a modulus of bits bits (random: only its size is judged)."""
    n = bytearray(os.urandom(bits // 8))
    n[0] |= 0x80
    return {"use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256", "n": tokens.b64url(bytes(n)),
            "e": "AQAB"}


@pytest.mark.parametrize("case", ["n-number", "kty-unknown", "huge-key", "small-key", "private",
                                  "duplicate-kid", "no-keys", "ec-off-curve", "keys-object"])
def test_bad_key_sets_are_refused_whole(h, case):
    good = h.api.call("GET", JWKS)[1]["keys"][0]
    keys = {
        "n-number": [dict(good, n=12345)],
        "kty-unknown": [dict(good, kty="oct")],
        "huge-key": [rsa_jwk(8192)],
        "small-key": [rsa_jwk(1024)],
        "private": [dict(good, d="AQAB")],
        "duplicate-kid": [good, dict(good)],
        "no-keys": [],
        "ec-off-curve": [{"kty": "EC", "kid": "e", "crv": "P-256", "x": tokens.b64url(b"\1" * 32),
                          "y": tokens.b64url(b"\2" * 32)}],
        "keys-object": {"a": good},
    }[case]
    jwks_fault(h, keys)
    h.write_conf(local_verify="yes")
    h.api.reset_requests()
    d = expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "keys_unavailable")
    assert "malformed_reply" in d["detail"], d
    assert counts(h) == (0, 1, 1)
    assert not os.path.exists(os.path.join(h.cache_dir, "jwks"))


def test_discovery_pointing_elsewhere_is_refused_unless_configured(h):
    port = h.api.port
    elsewhere = f"https://localhost:{port}{JWKS}"   # the same server under another origin
    h.api.add_fault(path=DISCOVERY, status=200, content_type="application/json",
                    body=json.dumps({"issuer": ISSUER, "jwks_uri": elsewhere}))
    h.write_conf(local_verify="yes")
    h.api.reset_requests()
    d = expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "keys_unavailable")
    assert "is not on" in d["detail"], d
    assert counts(h) == (0, 1, 0)
    # configured: fetched, but without the reviewer's credential (it goes to servers only);
    # the stand-in, like kube, serves the keys to ServiceAccounts only, hence 401
    shutil.rmtree(h.cache_dir)
    h.write_conf(local_verify="yes", extra=f"jwks_uri = {elsewhere}")
    h.api.reset_requests()
    d = expect(h.run("alice", h.token()), "PAM_AUTHINFO_UNAVAIL", "keys_unavailable")
    assert "401" in d["detail"], d
    last = [q for q in h.api.requests()["last"] if q["path"] == JWKS]
    assert len(last) == 1 and "Authorization" not in last[0]["headers"], last


# --- jwks_file, and every algorithm and key size ------------------------------------------------

class Key:
    """A signing key of any kind kube-apiserver may use, with its JWK."""

    def __init__(self, kind):
        self.kind = kind
        if kind.startswith("RS"):
            self.private = rsa.generate_private_key(65537, int(kind.split("-")[1]))
            self.alg = "RS256"
        else:
            curve, self.size, self.hash = {"ES256": (ec.SECP256R1(), 32, hashes.SHA256()),
                                           "ES384": (ec.SECP384R1(), 48, hashes.SHA384()),
                                           "ES512": (ec.SECP521R1(), 66, hashes.SHA512())}[kind]
            self.private = ec.generate_private_key(curve)
            self.alg = kind
        self.kid = "kid-" + kind

    def sign(self, data):
        if self.alg == "RS256":
            return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(self.hash)))
        return r.to_bytes(self.size, "big") + s.to_bytes(self.size, "big")

    def jwk(self):
        pub = self.private.public_key().public_numbers()
        if self.alg == "RS256":
            return {"use": "sig", "kty": "RSA", "kid": self.kid, "alg": "RS256",
                    "n": tokens.b64url(pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")),
                    "e": "AQAB"}
        crv = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[self.alg]
        return {"use": "sig", "kty": "EC", "kid": self.kid, "crv": crv, "alg": self.alg,
                "x": tokens.b64url(pub.x.to_bytes(self.size, "big")),
                "y": tokens.b64url(pub.y.to_bytes(self.size, "big"))}


KINDS = ["RS-2048", "RS-3072", "RS-4096", "ES256", "ES384", "ES512"]


@pytest.fixture(scope="module")
def keys():
    return {kind: Key(kind) for kind in KINDS}


def write_jwks_file(h, keys):
    path = os.path.join(h.tmp, "jwks.json")
    with open(path, "w") as f:
        json.dump({"keys": [k.jwk() for k in keys]}, f)
    os.chmod(path, 0o644)
    return path


def signed(h, key, **override):
    claims = tokens.bound_claims(ISSUER, int(time.time()), {"metadata": {
        "namespace": "pam", "name": "pam-user", "uid": "00000000-0000-4000-8000-000000000000"}},
        [AUDIENCE], int(time.time()) + 600)
    claims.update(override)
    tok = tokens.encode(key, claims)
    h.secrets.append(tok)
    return tok


@pytest.mark.parametrize("kind", KINDS)
def test_every_algorithm_and_key_size_from_jwks_file(h, keys, kind):
    """A token signed with each kind of key passes the local check and is then asked about
    (the stand-in does not trust these keys: unauthenticated proves the review was sent);
    the same token with one signature bit flipped is refused with no request."""
    path = write_jwks_file(h, keys.values())
    h.write_conf(local_verify="yes", extra=f"jwks_file = {path}\nissuer = {ISSUER}")
    h.api.reset_requests()
    tok = signed(h, keys[kind])
    expect(h.run("alice", tok), "PAM_AUTH_ERR", "unauthenticated")
    assert counts(h) == (1, 0, 0)   # no discovery with jwks_file
    head, payload, sig = tok.split(".")
    raw = bytearray(tokens.b64url_decode(sig))
    raw[len(raw) // 2] ^= 1
    flipped = ".".join([head, payload, tokens.b64url(bytes(raw))])
    h.secrets.append(flipped)
    h.api.reset_requests()
    expect(h.run("alice", flipped), "PAM_AUTH_ERR", "bad_signature")
    assert counts(h) == (0, 0, 0)


def test_jwks_file_with_the_clusters_keys_allows(h):
    path = os.path.join(h.tmp, "cluster-jwks.json")
    with open(path, "w") as f:
        json.dump(h.api.call("GET", JWKS)[1], f)
    h.write_conf(local_verify="yes", extra=f"jwks_file = {path}\nissuer = {ISSUER}")
    h.api.reset_requests()
    expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")
    assert counts(h) == (1, 0, 0)


def test_jwks_file_writable_by_others_is_not_used(h, keys):
    path = write_jwks_file(h, keys.values())
    os.chmod(path, 0o666)
    h.write_conf(local_verify="yes", extra=f"jwks_file = {path}\nissuer = {ISSUER}")
    h.api.reset_requests()
    d = expect(h.run("alice", signed(h, keys["ES256"])), "PAM_AUTHINFO_UNAVAIL",
               "keys_unavailable")
    assert "not writable" in d["detail"], d
    assert counts(h) == (0, 0, 0)


def test_jwks_file_requires_an_issuer(h, keys):
    path = write_jwks_file(h, keys.values())
    h.write_conf(local_verify="yes", extra=f"jwks_file = {path}")
    r = h.run("alice", h.token())
    assert r.code == "PAM_SERVICE_ERR", r
    assert any("jwks_file: requires issuer" in l for l in r.log_lines()), r.log_lines()


def test_another_cluster_gets_its_own_keys_at_once(auto, tmp_path):
    """A host re-pointed at another cluster (another server list) neither checks the new
    cluster's tokens against the old cluster's stored keys nor waits out the old cluster's
    one-fetch-a-minute limit: the key set and its fetch limit belong to the server list."""
    h = auto
    other = ktest.ApiServer(key="es256").start(str(tmp_path / "other"))
    try:
        h._write_private(h.reviewer_file, other.reviewer_token)
        h.secrets += [other.reviewer_token, other.admin_token]
        h.write_conf(servers=[other.url], ca_file=other.ca_file, local_verify=None)
        other.create_sa("pam", "pam-user")
        token = other.token_request("pam", "pam-user", [AUDIENCE], 600)
        h.secrets.append(token)
        expect(h.run("alice", token), "PAM_SUCCESS", "ok")
        assert other.requests()["counts"].get("/openid/v1/jwks", 0) == 1
        # and back: the stored set is now the other cluster's, and the first list's own
        # fetch limit does not hold back a fetch of its keys
        h._write_private(h.reviewer_file, h.api.reviewer_token)
        h.write_conf(local_verify=None)
        h.api.reset_requests()
        expect(h.run("alice", h.token()), "PAM_SUCCESS", "ok")
        assert counts(h) == (1, 1, 1)
    finally:
        other.stop()
