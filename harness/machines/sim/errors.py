"""The emulators' exception hierarchy."""

from __future__ import annotations

from typing import Any

from harness.errors import FlexlabError


class SimMachineError(FlexlabError):
    """Base of errors raised by the firmware emulators."""


class BootFailed(SimMachineError):
    """A machine gave up booting, as the real firmware would; ``code`` is the ROM's error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        #: specifics the timeline records with the failure (e.g. a TLS refusal's reason)
        self.detail: dict[str, Any] = {}


class FrameError(SimMachineError):
    """A received frame is not the Ethernet/IPv4/UDP shape the emulator expected (ignored)."""


class TlsRefused(BootFailed):
    """The agent refused the Control Plane's certificate (or had no CA to check it with).

    ``reason`` is the keyword the real agent logs (``tls refused reason=...``):
    ``unknown-ca``, ``hostname-mismatch``, ``expired``, ``not-yet-valid``,
    ``verify-failed`` or ``no-ca``; ``verify_code`` OpenSSL's (0 for ``no-ca``).
    """

    def __init__(self, reason: str, verify_code: int, host: str, message: str) -> None:
        super().__init__("TLS", f"tls refused reason={reason} verify_code={verify_code} "
                                f"host={host} detail={message}")
        self.reason = reason
        self.verify_code = verify_code
        self.host = host
        self.message = message
        self.detail.update(reason=reason, verify_code=verify_code, host=host, detail=message)
