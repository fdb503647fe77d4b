"""JSON as kube-apiserver writes it, and its metav1.Status error objects."""
import json

# Go's encoding/json escapes these even inside strings; Python does not.
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
               "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_json(obj, pretty=False, sort_keys=False):
    """json.NewEncoder(w).Encode (compact + "\\n") or MarshalIndent(obj, "", "  ")."""
    if pretty:
        text = json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=sort_keys)
    else:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys) + "\n"
    for char, escaped in _GO_ESCAPES.items():
        text = text.replace(char, escaped)
    return text.encode()


def go_quote(text):
    """Go's strconv.Quote / %q for a string."""
    simple = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
              "\t": "\\t", "\v": "\\v", '"': '\\"', "\\": "\\\\"}
    out = []
    for char in text:
        code = ord(char)
        if char in simple:
            out.append(simple[char])
        elif char.isprintable():
            out.append(char)
        elif code < 0x80:
            out.append("\\x%02x" % code)
        elif code < 0x10000:
            out.append("\\u%04x" % code)
        else:
            out.append("\\U%08x" % code)
    return '"' + "".join(out) + '"'


def go_quote_list(items):
    """%q of a []string: ["a" "b"]."""
    return "[" + " ".join(go_quote(item) for item in items) + "]"


def qualified(resource, group):
    """schema.GroupResource / GroupKind String()."""
    return f"{resource}.{group}" if group else resource


class ApiError(Exception):
    """A failure answered with a metav1.Status object."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason}
        if self.details is not None:
            obj["details"] = self.details
        obj["code"] = self.code
        return obj


def details(name="", group="", kind="", causes=None):
    """metav1.StatusDetails with its omitempty fields in struct order."""
    out = {}
    for key, value in (("name", name), ("group", group), ("kind", kind), ("causes", causes)):
        if value:
            out[key] = value
    return out


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def not_found(resource, group, name):
    return ApiError(404, "NotFound", f"{qualified(resource, group)} {go_quote(name)} not found",
                    details(name, group, resource))


def path_not_found():
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def method_not_allowed():
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource", {})


def already_exists(resource, group, name):
    return ApiError(409, "AlreadyExists", f"{qualified(resource, group)} {go_quote(name)} already exists",
                    details(name, group, resource))


def conflict(resource, group, name, why):
    return ApiError(409, "Conflict",
                    f"Operation cannot be fulfilled on {qualified(resource, group)} {go_quote(name)}: {why}",
                    details(name, group, resource))


def too_large(limit):
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def unsupported_media_type():
    return ApiError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json, application/yaml, application/vnd.kubernetes.protobuf")


def go_value(value):
    """How field.Error prints a value: strings quoted, numbers bare, slices Go-syntax."""
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, list):
        return "[]string{" + ", ".join(go_quote(str(v)) for v in value) + "}"
    return str(value)


class FieldError:
    """One k8s.io/apimachinery field.Error."""
    BODIES = {"FieldValueInvalid": "Invalid value", "FieldValueRequired": "Required value",
              "FieldValueNotSupported": "Unsupported value", "FieldValueTooLong": "Too long"}

    def __init__(self, kind, field, detail, value=None):
        self.kind, self.field, self.detail, self.value = kind, field, detail, value

    def body(self):
        text = self.BODIES[self.kind]
        if self.kind in ("FieldValueInvalid", "FieldValueNotSupported"):
            text += ": " + go_value(self.value)
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self):
        return f"{self.field}: {self.body()}"


def invalid(kind, group, name, errors):
    causes = [{"reason": e.kind, "message": e.body(), "field": e.field} for e in errors]
    joined = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(map(str, errors)) + "]"
    return ApiError(422, "Invalid", f"{qualified(kind, group)} {go_quote(name)} is invalid: {joined}",
                    details(name, group, kind, causes))


def internal_error(why):
    return ApiError(500, "InternalError", f"Internal error occurred: {why}",
                    {"causes": [{"message": why}]})


def status_for_code(code):
    """A plausible Status body for an injected HTTP status."""
    reasons = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
               409: "Conflict", 429: "TooManyRequests", 500: "InternalError",
               503: "ServiceUnavailable", 504: "Timeout"}
    return ApiError(code, reasons.get(code, "Unknown"), f"injected status {code}").status()
