"""The emulators' exception hierarchy."""

from __future__ import annotations

from harness.errors import FlexlabError


class SimMachineError(FlexlabError):
    """Base of errors raised by the firmware emulators."""


class BootFailed(SimMachineError):
    """A machine gave up booting, as the real firmware would; ``code`` is the ROM's error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class FrameError(SimMachineError):
    """A received frame is not the Ethernet/IPv4/UDP shape the emulator expected (ignored)."""
