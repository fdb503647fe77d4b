"""An independent Python reading of the on-disk cache format of pam_k8stoken/core/cache.h, for the
cache tests: entry names, MACs, parsing, and forging entries (the tests run as root and may
read the host key, as an attacker who already is root could anyway)."""
import hashlib
import hmac
import os
import re
import struct
import time

NAME_RE = re.compile(r"^e-[0-9a-f]{64}$")
TEMP_RE = re.compile(r"^t-[0-9a-f]+$")
LOCK_RE = re.compile(r"^lock-[0-9a-f]{2}$")
KEY_LEN = 32
ENTRY_MAX = 8192
MAX_ENTRIES = 10000


def boot_id():
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def boottime_ms():
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * 1000)


def read_key(cache_dir):
    with open(os.path.join(cache_dir, "key"), "rb") as f:
        key = f.read()
    assert len(key) == KEY_LEN, f"key file holds {len(key)} bytes"
    return key


def _be32(n):
    return struct.pack(">I", n)


def _list(items):
    out = _be32(len(items))
    for item in items:
        item = item.encode()
        out += _be32(len(item)) + item
    return out


def entry_name(key, token, audiences, servers):
    """ "e-" + hex(HMAC-SHA256(key, "k8stoken-entry-name" 0x00 || be32(len) token ||
    be32(#audiences) || each: be32(len) audience || be32(#servers) || each: be32(len) server))."""
    tok = token.encode() if isinstance(token, str) else token
    msg = b"k8stoken-entry-name\0" + _be32(len(tok)) + tok + _list(audiences) + _list(servers)
    return "e-" + hmac.new(key, msg, hashlib.sha256).hexdigest()


def entry_mac(key, name, body):
    """hex(HMAC-SHA256(key, "k8stoken-entry-mac" 0x00 || name || 0x00 || body))."""
    msg = b"k8stoken-entry-mac\0" + name.encode() + b"\0" + body
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def format_entry(key, name, expires_ms, identity=None, boot=None, version="1", mac=None):
    """Entry bytes in the order of cache.h. identity: dict with username, uid, groups and
    the optional credential, pod_name, pod_uid, node_name; None for a negative entry."""
    lines = [f"k8stoken-cache {version}", f"boot_id {boot if boot is not None else boot_id()}",
             f"expires {expires_ms}",
             f"result {'positive' if identity is not None else 'negative'}"]
    if identity is not None:
        lines.append(f"username {identity['username']}")
        lines.append(f"uid {identity['uid']}")
        lines += [f"group {g}" for g in identity.get("groups", [])]
        for opt in ("credential", "pod_name", "pod_uid", "node_name"):
            if identity.get(opt):
                lines.append(f"{opt} {identity[opt]}")
    body = ("\n".join(lines) + "\n").encode()
    return body + f"mac {mac or entry_mac(key, name, body)}\n".encode()


class Entry:
    def __init__(self, fields, groups, body, mac):
        self.fields = fields
        self.groups = groups
        self.body = body
        self.mac = mac

    @property
    def positive(self):
        return self.fields["result"] == "positive"

    @property
    def expires(self):
        return int(self.fields["expires"])

    def identity(self):
        ident = {k: v for k, v in self.fields.items()
                 if k in ("username", "uid", "credential", "pod_name", "pod_uid", "node_name")}
        ident["groups"] = list(self.groups)
        return ident


def parse_entry(data):
    """Parses entry bytes strictly (order, keys, one trailing newline); raises ValueError."""
    if len(data) > ENTRY_MAX:
        raise ValueError("entry too large")
    text = data.decode("utf-8")
    if not text.endswith("\n"):
        raise ValueError("no final newline")
    lines = text[:-1].split("\n")
    if len(lines) < 5 or lines[0] != "k8stoken-cache 1":
        raise ValueError(f"bad header {lines[:1]!r}")
    mac_line = lines[-1]
    if not re.fullmatch(r"mac [0-9a-f]{64}", mac_line):
        raise ValueError("bad mac line")
    body = data[:len(data) - len(mac_line) - 1]
    fields, groups = {}, []
    order = ["boot_id", "expires", "result"]
    for want, line in zip(order, lines[1:4]):
        k, _, v = line.partition(" ")
        if k != want or not v:
            raise ValueError(f"expected {want}, got {line!r}")
        fields[k] = v
    if not re.fullmatch(r"\d+", fields["expires"]):
        raise ValueError("bad expires")
    if fields["result"] not in ("positive", "negative"):
        raise ValueError("bad result")
    rest = lines[4:-1]
    if fields["result"] == "negative":
        if rest:
            raise ValueError("identity lines in a negative entry")
    else:
        seq = ["username", "uid"]
        for want in seq:
            if not rest:
                raise ValueError(f"missing {want}")
            k, _, v = rest.pop(0).partition(" ")
            if k != want or not v:
                raise ValueError(f"expected {want}")
            fields[k] = v
        optional = ["credential", "pod_name", "pod_uid", "node_name"]
        while rest and rest[0].startswith("group "):
            groups.append(rest.pop(0)[len("group "):])
        for line in rest:
            k, _, v = line.partition(" ")
            if k not in optional or not v:
                raise ValueError(f"unexpected line {line!r}")
            optional = optional[optional.index(k) + 1:]
            fields[k] = v
    return Entry(fields, groups, body, mac_line[4:])


def verify_entry(key, name, data):
    """The parsed entry when its MAC is right for name (raises otherwise)."""
    e = parse_entry(data)
    if not hmac.compare_digest(e.mac, entry_mac(key, name, e.body)):
        raise ValueError(f"MAC does not verify for {name}")
    return e


def rewrite(key, name, data, mac=None, **changes):
    """The entry with fields changed (and a fresh MAC unless mac is given)."""
    e = parse_entry(data)
    fields = dict(e.fields, **{k: v for k, v in changes.items() if k not in ("groups", "version")})
    ident = None
    if fields["result"] == "positive":
        ident = {k: fields.get(k) for k in ("username", "uid", "credential", "pod_name",
                                            "pod_uid", "node_name")}
        ident["groups"] = changes.get("groups", e.groups)
    return format_entry(key, name, int(fields["expires"]), ident, boot=fields["boot_id"],
                        version=changes.get("version", "1"), mac=mac)


def list_dir(cache_dir):
    try:
        return sorted(os.listdir(cache_dir))
    except FileNotFoundError:
        return []


def entries(cache_dir):
    return [n for n in list_dir(cache_dir) if n.startswith("e-")]


def temps(cache_dir):
    return [n for n in list_dir(cache_dir) if n.startswith("t-")]


def write_file(path, data, mode=0o600):
    tmp = path + ".planting"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
