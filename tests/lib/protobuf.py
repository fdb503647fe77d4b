"""Just enough of Kubernetes' protobuf encoding to read what kubectl 1.32+ sends (docs/kubernetes.md §6.3).

Field tables come from the generated.proto files of k8s.io/api; a field not listed is skipped.
"""
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

STRING, INT, STRINGS, MAP, BYTES = "string", "int", "strings", "map", "bytes"
OBJECT_META = {1: ("name", STRING), 2: ("generateName", STRING), 3: ("namespace", STRING),
               11: ("labels", MAP), 12: ("annotations", MAP)}
MESSAGES = {
    "TokenRequest": {1: ("metadata", OBJECT_META), 2: ("spec", {
        1: ("audiences", STRINGS), 4: ("expirationSeconds", INT),
        3: ("boundObjectRef", {1: ("kind", STRING), 2: ("apiVersion", STRING),
                               3: ("name", STRING), 4: ("uid", STRING)})})},
    "TokenReview": {1: ("metadata", OBJECT_META), 2: ("spec", {1: ("token", STRING), 2: ("audiences", STRINGS)})},
    "ServiceAccount": {1: ("metadata", OBJECT_META)},
    "Namespace": {1: ("metadata", OBJECT_META)},
    "Role": {1: ("metadata", OBJECT_META), 2: ("rules", [{
        1: ("verbs", STRINGS), 2: ("apiGroups", STRINGS), 3: ("resources", STRINGS),
        4: ("resourceNames", STRINGS), 5: ("nonResourceURLs", STRINGS)}])},
    "RoleBinding": {1: ("metadata", OBJECT_META), 2: ("subjects", [{
        1: ("kind", STRING), 2: ("apiGroup", STRING), 3: ("name", STRING), 4: ("namespace", STRING)}]),
        3: ("roleRef", {1: ("apiGroup", STRING), 2: ("kind", STRING), 3: ("name", STRING)})},
}
MESSAGES["ClusterRole"] = MESSAGES["Role"]
MESSAGES["ClusterRoleBinding"] = MESSAGES["RoleBinding"]


def _varint(data, pos):
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated protobuf varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(data):
    """Yields (number, value) with value an int (varint) or bytes (length-delimited)."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _varint(data, pos)
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
            if len(value) != length:
                raise ValueError("truncated protobuf field")
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            value, pos = data[pos:pos + size], pos + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        yield number, value


def _message(data, table):
    out = {}
    for number, value in _fields(data):
        if number not in table:
            continue
        name, kind = table[number]
        if kind == STRING:
            if value:  # proto2 sends empty optional strings; JSON omits them
                out[name] = value.decode()
        elif kind in (INT, BYTES):
            out[name] = value
        elif kind == STRINGS:
            out.setdefault(name, []).append(value.decode())
        elif kind == MAP:
            entry = _message(value, {1: ("k", STRING), 2: ("v", STRING)})
            out.setdefault(name, {})[entry.get("k", "")] = entry.get("v", "")
        elif isinstance(kind, list):
            out.setdefault(name, []).append(_message(value, kind[0]))
        else:
            out[name] = _message(value, kind)
    return out


def decode(body):
    """The "k8s\\0" + runtime.Unknown envelope → a JSON-like dict with apiVersion and kind."""
    if not body.startswith(MAGIC):
        raise ValueError("protobuf body without the k8s envelope")
    unknown = _message(body[len(MAGIC):], {1: ("typeMeta", {1: ("apiVersion", STRING), 2: ("kind", STRING)}),
                                           2: ("raw", BYTES)})
    type_meta = unknown.get("typeMeta", {})
    kind = type_meta.get("kind", "")
    if kind not in MESSAGES:
        raise ValueError(f"cannot decode protobuf {kind or 'object'}")
    obj = {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind}
    obj.update(_message(unknown.get("raw", b""), MESSAGES[kind]))
    return obj
