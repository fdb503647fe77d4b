"""The /_test/ control API: admin token only, JSON in and out."""
import json
import uuid

import tokens
import wire
from api import json_reply
from rbac import Attributes, forbidden
from store import BY_NAME

ADMIN = "kubernetes-admin"


class Control:
    def __init__(self, app):
        self.app = app
        self._other_key = None

    def handle(self, req):
        try:
            self._authorize(req)
            return self._route(req)
        except wire.ApiError as error:
            return json_reply(error.code, error.status(), False, error.headers)

    def _authorize(self, req):
        user = self.app.api.authenticate(req)
        if user.username != ADMIN:
            raise forbidden(Attributes(user.username, user.groups, req.method.lower(), req.path))

    def _body(self, req):
        try:
            obj = json.loads(req.body or b"{}")
        except ValueError as error:
            raise wire.bad_request(f"control body is not JSON: {error}") from None
        if not isinstance(obj, dict):
            raise wire.bad_request("control body must be a JSON object")
        return obj

    def _route(self, req):
        app, route = self.app, (req.method, req.path.rstrip("/"))
        if route == ("POST", "/_test/faults"):
            return json_reply(200, {"id": app.faults.add(self._body(req))})
        if route == ("GET", "/_test/faults"):
            return json_reply(200, {"faults": app.faults.list()})
        if route == ("DELETE", "/_test/faults"):
            app.faults.clear()
            return json_reply(200, {})
        if route == ("POST", "/_test/clock"):
            app.clock.offset = float(self._body(req).get("offset_seconds", 0))
            return json_reply(200, self._clock())
        if route == ("GET", "/_test/clock"):
            return json_reply(200, self._clock())
        if route == ("GET", "/_test/requests"):
            return json_reply(200, app.recorder.snapshot())
        if route == ("DELETE", "/_test/requests"):
            app.recorder.reset()
            return json_reply(200, {})
        if route == ("POST", "/_test/mint"):
            return json_reply(200, {"token": self.mint(self._body(req))})
        if route == ("POST", "/_test/config"):
            body = self._body(req)
            if "anonymous_quirk" in body:
                app.config.anonymous_auth = bool(body["anonymous_quirk"])
            if "k8s_version" in body:
                app.config.k8s_version = str(body["k8s_version"])
            return json_reply(200, self._config())
        if route == ("GET", "/_test/config"):
            return json_reply(200, self._config())
        if route == ("POST", "/_test/keys"):
            return json_reply(200, self.rotate(self._body(req)))
        if route == ("GET", "/_test/keys"):
            return json_reply(200, self._keys())
        raise wire.path_not_found()

    def _clock(self):
        return {"offset_seconds": self.app.clock.offset, "now": self.app.clock.now()}

    def _config(self):
        config = self.app.config
        return {"anonymous_quirk": config.anonymous_auth, "k8s_version": config.k8s_version,
                "issuer": config.issuer, "api_audiences": config.api_audiences, "kid": self.app.api.key.kid}

    def _keys(self):
        return {"signing": self.app.api.key.kid, "kids": [k.kid for k in self.app.api.authn.keys]}

    def rotate(self, body):
        """Key rotation as an operator does it: "add" a key of body["type"] (default the
        server's) that signs from now on while the old ones stay trusted and published;
        "remove" the key body["kid"] (not the signing one) from the trusted, published set."""
        trusted = self.app.api.authn.keys
        if body.get("action") == "add":
            key = tokens.SigningKey(body.get("type") or self.app.key_type)
            trusted.append(key)
            self.app.api.key = self.app.key = key
        elif body.get("action") == "remove":
            if body.get("kid") == self.app.api.key.kid:
                raise wire.bad_request("the signing key cannot be removed")
            trusted[:] = [k for k in trusted if k.kid != body.get("kid")]
        else:
            raise wire.bad_request('action must be "add" or "remove"')
        return self._keys()

    def other_key(self):
        """A key of the same type that the server does not trust."""
        if self._other_key is None:
            self._other_key = tokens.SigningKey(self.app.key_type)
        return self._other_key

    def mint(self, spec):
        """Any token, bypassing TokenRequest validation (see README for the fields)."""
        store, config, now = self.app.store, self.app.config, self.app.clock.now()
        namespace, name = spec.get("namespace", "default"), spec.get("name", "default")
        sa_res = BY_NAME[("", "serviceaccounts")]
        sa = store.find(sa_res, namespace, name)
        if sa is None and spec.get("create_sa", True):
            sa = store.create(sa_res, namespace, {"metadata": {"name": name}})
        if sa is None:
            sa = {"metadata": {"namespace": namespace, "name": name, "uid": str(uuid.uuid4())}}
        key = self.app.api.key if spec.get("key", "current") == "current" else self.other_key()
        if spec.get("legacy"):
            claims = tokens.legacy_claims(sa, spec.get("secret") or name + "-token")
        else:
            refs = {kind: self._ref(kind, namespace, spec[kind]) for kind in ("pod", "secret", "node")
                    if spec.get(kind)}
            audiences = spec.get("audiences") or config.api_audiences
            expires = now + spec.get("expiration_seconds", 3600)
            claims = tokens.bound_claims(config.issuer, now, sa, audiences, expires,
                                         jti=spec.get("jti", True), **refs)
            claims["iat"] = int(now + spec.get("iat_offset", 0))
            claims["nbf"] = int(now + spec.get("nbf_offset", 0))
            if spec.get("exp_offset") is not None:
                claims["exp"] = int(now + spec["exp_offset"])
        for claim, value in (spec.get("claims_override") or {}).items():
            if value is None:
                claims.pop(claim, None)
            else:
                claims[claim] = value
        return tokens.encode(key, claims, spec.get("kid"))

    def _ref(self, kind, namespace, name):
        """{"name","uid"} of an existing object, or with a random uid when there is none."""
        obj = self.app.store.find(BY_NAME[("", kind + "s")], "" if kind == "node" else namespace, name)
        return tokens.ref(obj) if obj else {"name": name, "uid": str(uuid.uuid4())}


