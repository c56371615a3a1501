"""API errors, one hierarchy, each rendering as a Kubernetes ``Status``.

Handlers, the pipeline and strategies raise these; the middleware (and the in-process client) turn
them into the ``Status`` body and HTTP code that kubectl and the client libraries parse: kubectl prints
``Error from server (<reason>): <message>``, and for 422 rebuilds the text from ``details.causes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldError:
    """One validation failure, worded as Kubernetes' field errors are.

    ``type`` is the cause reason (``FieldValueInvalid``, ``FieldValueRequired``, ``FieldValueNotSupported``,
    ``FieldValueDuplicate``, ``FieldValueForbidden``, ``FieldValueTooLong``, ``FieldValueTypeInvalid``).
    """

    type: str
    field: str
    detail: str = ""
    value: Any = None
    has_value: bool = False

    def message(self) -> str:
        """The text after the field path, as ``field.ErrorList`` prints it."""
        prefix = {
            "FieldValueInvalid": "Invalid value",
            "FieldValueRequired": "Required value",
            "FieldValueNotSupported": "Unsupported value",
            "FieldValueDuplicate": "Duplicate value",
            "FieldValueForbidden": "Forbidden",
            "FieldValueTooLong": "Too long",
            "FieldValueTooMany": "Too many",
            "FieldValueTypeInvalid": "Invalid value",
        }.get(self.type, "Invalid value")
        text = prefix
        if self.has_value:
            text += f": {_quote(self.value)}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def cause(self) -> dict[str, Any]:
        return {"reason": self.type, "message": self.message(), "field": self.field}


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", path, detail, value, True)


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, detail)


def not_supported(path: str, value: Any, allowed: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(f'"{a}"' for a in allowed)
    return FieldError("FieldValueNotSupported", path, detail, value, True)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", path, detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", path, "", value, True)


def _quote(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class StatusError(Exception):
    """An error with its HTTP code and Kubernetes reason."""

    message: str
    code: int = 500
    reason: str = "InternalError"
    details: dict[str, Any] = field(default_factory=dict)
    retry_after: int | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def status(self) -> dict[str, Any]:
        """The ``Status`` body."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details = dict(self.details)
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        if details:
            body["details"] = details
        return body


def _details(name: str | None, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    return details


def _qualified(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(group: str, resource: str, name: str) -> StatusError:
    return StatusError(
        f'{_qualified(group, resource)} "{name}" not found', 404, "NotFound", _details(name, group, resource)
    )


def already_exists(group: str, resource: str, name: str) -> StatusError:
    return StatusError(
        f'{_qualified(group, resource)} "{name}" already exists',
        409,
        "AlreadyExists",
        _details(name, group, resource),
    )


def conflict(group: str, resource: str, name: str, why: str) -> StatusError:
    return StatusError(
        f'Operation cannot be fulfilled on {_qualified(group, resource)} "{name}": {why}',
        409,
        "Conflict",
        _details(name, group, resource),
    )


def invalid_object(group: str, kind: str, name: str, causes: list[FieldError]) -> StatusError:
    summary = "; ".join(f"{c.field}: {c.message()}" if c.field else c.message() for c in causes)
    details = _details(name, group, kind)
    details["causes"] = [c.cause() for c in causes]
    return StatusError(
        f'{kind}{"." + group if group else ""} "{name}" is invalid: {summary}', 422, "Invalid", details
    )


def bad_request(message: str) -> StatusError:
    return StatusError(message, 400, "BadRequest")


def method_not_allowed(message: str) -> StatusError:
    return StatusError(message, 405, "MethodNotAllowed")


def not_acceptable(message: str) -> StatusError:
    return StatusError(message, 406, "NotAcceptable")


def unsupported_media_type(message: str) -> StatusError:
    return StatusError(message, 415, "UnsupportedMediaType")


def too_large(message: str) -> StatusError:
    return StatusError(message, 413, "RequestEntityTooLarge")


def gone(message: str) -> StatusError:
    return StatusError(message, 410, "Expired")


def unauthorized() -> StatusError:
    return StatusError("Unauthorized", 401, "Unauthorized")


def forbidden_request(message: str) -> StatusError:
    return StatusError(message, 403, "Forbidden")


def timeout(message: str, retry_after: int = 1) -> StatusError:
    return StatusError(message, 504, "Timeout", retry_after=retry_after)


def service_unavailable(message: str) -> StatusError:
    return StatusError(message, 503, "ServiceUnavailable")


def internal(message: str) -> StatusError:
    return StatusError(f"Internal error occurred: {message}", 500, "InternalError")
