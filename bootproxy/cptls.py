"""TLS towards the Control Plane: which CA the proxy trusts, and why a handshake failed.

The proxy trusts exactly the CA file given with `--cp-ca` (the site's internal
CA or the lab CA), or the system store when none is given. A failed
verification is sorted into one of a few reasons an operator can act on —
`unknown-ca`, `hostname-mismatch`, `expired`, `not-yet-valid`, otherwise
`verify-failed` — from OpenSSL's verify code, not from the message text.
`CpTlsStatus` keeps the last verdict for `/healthz` and counts failures by
reason in `/metrics`. Standard library only: the proxy image has no
`cryptography`.
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from bootproxy.errors import ConfigError
from bootproxy.logs import log_event
from bootproxy.metrics import Registry

__all__ = ["CpTlsStatus", "TlsFailure", "client_context", "tls_failure"]

_LOG = logging.getLogger("bootproxy.cptls")

# OpenSSL X509_V_ERR_* codes (x509_vfy.h) and the reason each one means here.
_REASONS: dict[int, str] = {
    2: "unknown-ca",    # unable to get issuer certificate
    7: "unknown-ca",    # certificate signature failure (signed by another key)
    18: "unknown-ca",   # self-signed leaf
    19: "unknown-ca",   # self-signed certificate in chain
    20: "unknown-ca",   # unable to get local issuer certificate
    21: "unknown-ca",   # unable to verify the first certificate
    9: "not-yet-valid",
    10: "expired",
    62: "hostname-mismatch",
    64: "hostname-mismatch",  # IP address mismatch: same fault, the URL names an IP
}


def client_context(cp_ca: Path | None) -> ssl.SSLContext:
    """A verifying client context trusting only `cp_ca`, or the system store without one.

    Hostname checking and certificate verification stay on (the defaults);
    an unreadable or non-PEM file is a `ConfigError` naming `--cp-ca`.
    """
    if cp_ca is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(cp_ca))
    except FileNotFoundError as exc:
        raise ConfigError(f"--cp-ca {cp_ca}: no such file") from exc
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"--cp-ca {cp_ca}: not a readable PEM CA certificate ({exc}); give the CA that "
            "signed the Control Plane's certificate"
        ) from exc


@dataclass(frozen=True)
class TlsFailure:
    """Why the Control Plane's certificate was refused: a reason keyword and OpenSSL's words."""

    reason: str
    code: int
    detail: str


def cp_transport_errors() -> tuple[type[BaseException], ...]:
    """What a request to the Control Plane may raise when the connection itself fails.

    httpx wraps transport errors in ``httpx.HTTPError``, but the httpx/httpcore of the
    Debian image (bookworm) lets an ``ssl.SSLError`` from the handshake through bare: a
    wrong CA then crashed the sync task instead of being logged as ``cp_tls_failed``.
    Every Control Plane call catches this tuple, so both builds behave the same.
    """
    import httpx

    return (httpx.HTTPError, ssl.SSLError)


def tls_failure(exc: BaseException) -> TlsFailure | None:
    """The certificate verification failure behind `exc` (httpx wraps it), or None.

    Walks `__cause__`/`__context__` so any wrapper (httpx.ConnectError, an
    anyio error) still yields the underlying `ssl.SSLCertVerificationError`.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            code = int(current.verify_code or 0)
            detail = str(current.verify_message or current.reason or current)
            return TlsFailure(_REASONS.get(code, "verify-failed"), code, detail)
        current = current.__cause__ or current.__context__
    return None


class CpTlsStatus:
    """The last TLS verdict on the Control Plane, for /healthz, /metrics and the log.

    A failure is logged (`cp_tls_failed`, with the reason) when it starts or its
    reason changes, not on every retry; the first good answer after it logs
    `cp_tls_recovered`.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.last: TlsFailure | None = None
        self.since: float | None = None
        registry.gauge("bootproxy_cp_tls_ok", lambda: 0.0 if self.last else 1.0)

    def failed(self, failure: TlsFailure, url: str) -> None:
        """Count one refused handshake; log it when it is news."""
        self.registry.inc("bootproxy_cp_tls_failures_total", reason=failure.reason)
        if self.last is None or self.last.reason != failure.reason:
            log_event(
                _LOG, "cp_tls_failed", logging.ERROR, reason=failure.reason,
                verify_code=failure.code, detail=failure.detail, url=url,
                hint="serving known MACs from the last good state; unknown MACs are refused",
            )
            self.since = time.time()
        self.last = failure

    def ok(self) -> None:
        """A verified answer came back: clear the failure."""
        if self.last is not None:
            log_event(_LOG, "cp_tls_recovered", previous_reason=self.last.reason)
        self.last = None
        self.since = None

    def details(self) -> dict[str, object]:
        """The /healthz fields: `cp_tls_error` is None while the last handshake verified."""
        if self.last is None:
            return {"cp_tls_error": None}
        return {"cp_tls_error": {"reason": self.last.reason, "verify_code": self.last.code,
                                 "detail": self.last.detail, "since": self.since}}
