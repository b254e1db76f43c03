"""The Control Plane's exception hierarchy.

Store and service code raise these; the HTTP layer turns each into a status
code and a `{"error", "detail"}` body, so every message is written for the
person (or Boot Proxy) reading that body and says what to do next.
"""

from __future__ import annotations


class ControlPlaneError(Exception):
    """Base of every Control Plane error; `status` is the HTTP code it maps to."""

    status = 500
    error = "internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ControlPlaneError):
    """A named resource (cluster, machine, profile, proxy, artifact) does not exist."""

    status = 404
    error = "not found"


class Conflict(ControlPlaneError):
    """The write clashes with existing state (duplicate name, wrong life-cycle step)."""

    status = 409
    error = "conflict"


class InvalidReference(ControlPlaneError):
    """A body field names something that does not exist; reported as a 422 on that field."""

    status = 422
    error = "validation failed"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field


class Unauthenticated(ControlPlaneError):
    """No token, or a token the Control Plane has never issued."""

    status = 401
    error = "unauthenticated"


class Forbidden(ControlPlaneError):
    """A valid token of the wrong kind or scope, or a join token already used."""

    status = 403
    error = "forbidden"


class ConfigError(ControlPlaneError):
    """Bad start-up input: flags, seed file, TLS directory."""

    error = "configuration error"
