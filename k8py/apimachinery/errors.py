"""Kubernetes Status errors.

Every failure a client sees is a `metav1.Status` shaped exactly as the Go
apiserver writes it: key order kind, apiVersion, metadata, status, message,
reason, details, code (the Python client compares bodies byte for byte), and
empty fields left out as Go's `omitempty` does.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Cause:
    """One `details.causes[]` entry: which field is wrong and why."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict:
        out = {"reason": self.reason, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out

    def describe(self) -> str:
        return f"{self.field}: {self.message}"


class StatusError(Exception):
    """An error that reaches the client as a Status object."""

    def __init__(self, code: int, reason: str, message: str, *, name: str = "",
                 group: str = "", kind: str = "", causes: list[Cause] | None = None,
                 retry_after: int = 0, uid: str = "", list_continue: str = ""):
        super().__init__(message)
        self.list_continue = list_continue  # Status.metadata.continue (an expired list's way on)
        self.code = code
        self.reason = reason
        self.message = message
        self.name = name
        self.group = group
        self.kind = kind
        self.uid = uid
        self.causes = causes or []
        self.retry_after = retry_after

    def details(self) -> dict | None:
        details: dict = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.uid:
            details["uid"] = self.uid
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after:
            details["retryAfterSeconds"] = self.retry_after
        return details or None

    def to_status(self) -> dict:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {"continue": self.list_continue} if self.list_continue else {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:  # Go leaves an empty reason out (omitempty)
            status["reason"] = self.reason
        details = self.details()
        if details is not None:
            status["details"] = details
        status["code"] = self.code
        return status


def success_status(name: str = "", group: str = "", kind: str = "", uid: str = "") -> dict:
    """The Status a delete returns when the object is gone immediately."""
    details = {k: v for k, v in (("name", name), ("group", group), ("kind", kind), ("uid", uid)) if v}
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        status["details"] = details
    return status


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                       name=name, group=group, kind=resource)


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists',
                       name=name, group=group, kind=resource)


def conflict(resource: str, name: str, reason_text: str, group: str = "") -> StatusError:
    return StatusError(409, "Conflict",
                       f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {reason_text}',
                       name=name, group=group, kind=resource)


STALE_OBJECT = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> StatusError:
    """422 Invalid, message listing each cause as upstream's ToAggregate does."""
    # Like Go's error aggregate: the same text twice is reported once.
    described = list(dict.fromkeys(c.describe() for c in causes))
    if len(described) == 1:
        summary = described[0]
    else:
        summary = "[" + ", ".join(described) + "]"
    qualified = f"{kind}.{group}" if group else kind
    return StatusError(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}',
                       name=name, group=group, kind=kind, causes=causes)


def bad_request(message: str, causes: list[Cause] | None = None) -> StatusError:
    return StatusError(400, "BadRequest", message, causes=causes)


def method_not_allowed(verb: str, resource: str = "") -> StatusError:
    return StatusError(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource",
                       kind=resource)


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType",
                       'the body of the request was in an unknown format - accepted media types include: '
                       'application/json, application/yaml, application/vnd.kubernetes.protobuf')


def not_acceptable(accept: str) -> StatusError:
    return StatusError(406, "NotAcceptable", "only the following media types are accepted: application/json, "
                       "application/yaml, application/vnd.kubernetes.protobuf")


def path_not_found() -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource")


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")


def forbidden(user: str, verb: str, resource: str, group: str, name: str, namespace: str,
              reason: str = "", subresource: str = "") -> StatusError:
    res = _qualified(resource, group)
    what = f'{res} "{name}"' if name else f'{res}'
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    full = f"{resource}/{subresource}" if subresource else resource
    message = f'{what} is forbidden: User "{user}" cannot {verb} resource "{full}" in API group "{group}"{where}'
    if reason:
        message += f": {reason}"
    return StatusError(403, "Forbidden", message, name=name, group=group, kind=resource)


def request_entity_too_large(message: str = "Request entity too large: limit is 3145728") -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", message)


def expired(message: str, list_continue: str = "") -> StatusError:
    return StatusError(410, "Expired", message, list_continue=list_continue)


def gone(message: str) -> StatusError:
    return StatusError(410, "Gone", message)


def too_many_requests(message: str, retry_after: int = 0) -> StatusError:
    return StatusError(429, "TooManyRequests", message, retry_after=retry_after)


def internal_error(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def service_unavailable(message: str) -> StatusError:
    return StatusError(503, "ServiceUnavailable", message)


def timeout(message: str) -> StatusError:
    return StatusError(504, "Timeout", message)
