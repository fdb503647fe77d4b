"""Test controls kept by the server: injected faults and a record of the requests it received."""
import base64
import collections
import threading

import wire

FAULT_KEYS = {"path", "times", "latency_ms", "status", "headers", "body", "body_b64", "content_type",
              "chunked", "body_size", "trickle_bps", "redirect", "reset", "close_without_response"}
RESETS = (None, "before_response", "mid_body")
KEEP_REQUESTS = 100


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.next_id = 1

    def add(self, rule):
        unknown = set(rule) - FAULT_KEYS
        if unknown:
            raise wire.bad_request(f"unknown fault fields: {', '.join(sorted(unknown))}")
        if not isinstance(rule.get("path"), str):
            raise wire.bad_request('fault needs a "path" (or "*")')
        if rule.get("reset") not in RESETS:
            raise wire.bad_request('"reset" must be "before_response" or "mid_body"')
        if "body" in rule and "body_b64" in rule:
            raise wire.bad_request('give "body" or "body_b64", not both')
        with self.lock:
            rule = dict(rule, id=self.next_id)
            self.next_id += 1
            self.rules.append(rule)
            return rule["id"]

    def clear(self):
        with self.lock:
            self.rules.clear()

    def list(self):
        with self.lock:
            return [dict(r) for r in self.rules]

    def take(self, path):
        """The first rule matching path, counting one use of it."""
        with self.lock:
            for rule in self.rules:
                if rule["path"] in ("*", path):
                    if rule.get("times") is not None:
                        rule["times"] -= 1
                        if rule["times"] <= 0:
                            self.rules.remove(rule)
                    return dict(rule)
        return None


def fault_body(rule):
    """The explicit body bytes of a rule, or None."""
    if "body_b64" in rule:
        return base64.b64decode(rule["body_b64"])
    if "body" in rule:
        return rule["body"].encode()
    return None


class Recorder:
    """Per-path counts and the last requests, Authorization included: tests check what was sent."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.last = collections.deque(maxlen=KEEP_REQUESTS)

    def record(self, req, raw_query):
        try:
            body, is_b64 = req.body.decode(), False
        except UnicodeDecodeError:
            body, is_b64 = base64.b64encode(req.body).decode(), True
        entry = {"method": req.method, "path": req.path, "query": raw_query,
                 "headers": dict(req.headers), "body": body, "body_b64": is_b64}
        with self.lock:
            self.counts[req.path] += 1
            self.last.append(entry)

    def snapshot(self):
        with self.lock:
            return {"counts": dict(self.counts), "last": list(self.last)}

    def reset(self):
        with self.lock:
            self.counts.clear()
            self.last.clear()
