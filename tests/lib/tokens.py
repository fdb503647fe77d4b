"""Service-account JWTs exactly as kube-apiserver signs them (pkg/serviceaccount/jwt.go, claims.go)."""
import base64
import hashlib
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from wire import go_json

KEY_TYPES = ("rs256-2048", "rs256-4096", "es256")
LEGACY_ISSUER = "kubernetes/serviceaccount"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    """base64.RawURLEncoding.DecodeString: no padding, URL alphabet only."""
    if any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text) \
            or len(text) % 4 == 1:
        raise ValueError("illegal base64 data")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sorted_json(obj):
    """go-jose re-marshals claims through a map: compact, keys sorted at every level."""
    return go_json(obj, sort_keys=True)[:-1]


class SigningKey:
    def __init__(self, key_type="rs256-2048"):
        if key_type == "es256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.alg = "ES256"
        else:
            self.private = rsa.generate_private_key(65537, int(key_type.rsplit("-", 1)[1]))
            self.alg = "RS256"
        self.public = self.private.public_key()
        spki = self.public.public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = b64url(hashlib.sha256(spki).digest())

    def sign(self, data):
        if self.alg == "RS256":
            return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify(self, alg, data, signature, jose):
        """None when valid, else the go-jose error text (jose = its package prefix)."""
        if alg != self.alg:
            return f"{jose}: unknown/unsupported algorithm"
        try:
            if alg == "RS256":
                self.public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
            else:
                if len(signature) != 64:
                    return f"{jose}: invalid signature size, have {len(signature)} bytes, wanted 64"
                der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                           int.from_bytes(signature[32:], "big"))
                self.public.verify(der, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return f"{jose}: error in cryptographic primitive"
        return None

    def jwk(self):
        """go-jose rawJSONWebKey field order."""
        if self.alg == "RS256":
            numbers = self.public.public_numbers()
            n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
            return {"use": "sig", "kty": "RSA", "kid": self.kid, "alg": "RS256",
                    "n": b64url(n), "e": b64url(numbers.e.to_bytes(3, "big"))}
        numbers = self.public.public_numbers()
        return {"use": "sig", "kty": "EC", "kid": self.kid, "crv": "P-256", "alg": "ES256",
                "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big"))}


def encode(key, claims, kid=None):
    """Compact JWS; header {"alg","kid"} (kid None = the key's own, "" = no kid header)."""
    kid = key.kid if kid is None else kid
    header = {"alg": key.alg, "kid": kid} if kid else {"alg": key.alg}
    signing_input = b64url(sorted_json(header)) + "." + b64url(sorted_json(claims))
    return signing_input + "." + b64url(key.sign(signing_input.encode()))


def ref(obj):
    return {"name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"]}


def bound_claims(issuer, now, sa, audiences, expires, pod=None, secret=None, node=None,
                 warnafter=None, jti=True):
    """claims.go Claims(): refs are {"name","uid"}; node may be a name-only dict."""
    namespace = sa["metadata"]["namespace"]
    kube = {"namespace": namespace, "serviceaccount": ref(sa)}
    for key, value in (("pod", pod), ("secret", secret), ("node", node), ("warnafter", warnafter)):
        if value is not None:
            kube[key] = value
    claims = {"aud": list(audiences), "exp": int(expires), "iat": int(now), "iss": issuer,
              "kubernetes.io": kube, "nbf": int(now),
              "sub": f"system:serviceaccount:{namespace}:{sa['metadata']['name']}"}
    if jti:
        claims["jti"] = str(uuid.uuid4())
    return claims


def legacy_claims(sa, secret_name):
    """legacy.go LegacyClaims(): no aud, exp, iat, nbf or jti."""
    namespace, name = sa["metadata"]["namespace"], sa["metadata"]["name"]
    prefix = "kubernetes.io/serviceaccount/"
    return {"iss": LEGACY_ISSUER, prefix + "namespace": namespace,
            prefix + "secret.name": secret_name, prefix + "service-account.name": name,
            prefix + "service-account.uid": sa["metadata"]["uid"],
            "sub": f"system:serviceaccount:{namespace}:{name}"}
