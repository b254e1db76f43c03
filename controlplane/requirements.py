"""The KubeFlex machine requirements, checked when a node registers.

Kept apart from the store so the rules read as a list and can be tested
without a server. Each failed check yields one reason a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import Facts

REQUIRED_ARCH = "x86_64"
MIN_CPU_CORES = 2
MIN_MEMORY_BYTES = 3 * 10**9
MIN_DISK_BYTES = 10 * 10**9
MAX_CLOCK_SKEW_S = 1.0

_ARCH_ALIASES = {"x86_64", "x86-64", "amd64"}

# PXE client architecture (DHCP option 93, CONFORMANCE CLI-3) -> the CPU it implies.
# BIOS (0) says nothing about 32 or 64 bits, so it implies none.
PXE_ARCH_CPU = {6: "i686", 7: "x86_64", 9: "x86_64", 10: "arm", 11: "aarch64",
                15: "i686", 16: "x86_64", 18: "arm", 19: "aarch64"}


def boot_arch_reasons(pxe_arch: int) -> list[str]:
    """Reasons a machine whose firmware boots as ``pxe_arch`` cannot join; empty if none.

    What a Boot Proxy sees when a machine's firmware is not x86-64 (an ARM64 UEFI
    DISCOVER, arch 11): such a machine never runs the node agent, so the proxy's
    report is the only evidence the Control Plane gets.
    """
    cpu = PXE_ARCH_CPU.get(pxe_arch)
    if cpu is None or cpu in _ARCH_ALIASES:
        return []
    return [f"arch {cpu} != {REQUIRED_ARCH} (PXE client arch {pxe_arch})"]


def check_requirements(facts: Facts, cp_clock: float) -> list[str]:
    """Return the reasons `facts` fail the requirements; empty means the node may join.

    `cp_clock` is the Control Plane's clock when the registration arrived: the
    reference for the node's `clock_unix` only when the node reports no measured
    offset (see _clock_reasons).
    """
    reasons: list[str] = []
    if facts.arch.lower() not in _ARCH_ALIASES:
        reasons.append(f"arch {facts.arch} != {REQUIRED_ARCH}")
    if facts.cpu_cores < MIN_CPU_CORES:
        reasons.append(f"cpu_cores {facts.cpu_cores} < {MIN_CPU_CORES}")
    if facts.memory_bytes < MIN_MEMORY_BYTES:
        reasons.append(f"memory_bytes {facts.memory_bytes} < {MIN_MEMORY_BYTES}")
    largest = max((disk.size_bytes for disk in facts.disks), default=0)
    if largest < MIN_DISK_BYTES:
        reasons.append(
            f"no disk with size_bytes >= {MIN_DISK_BYTES} (largest {largest})"
        )
    reasons += _clock_reasons(facts, cp_clock)
    return reasons


@dataclass(frozen=True)
class ClockReading:
    """How far a node's clock is from the site's time, and how the figure was got."""

    offset_s: float
    error_s: float  # the offset is known to within this (half a two-way round trip)
    source: str  # "ntp", "http" (two-way with GET /api/v1/time) or "arrival" (unmeasured)
    server: str | None = None

    @property
    def too_far(self) -> bool:
        """Beyond MAX_CLOCK_SKEW_S by more than the measurement's own bound."""
        return abs(self.offset_s) - self.error_s > MAX_CLOCK_SKEW_S

    def describe(self) -> str:
        """The offset as a person reads it, with how it was measured (the API's reasons,
        docs/CONTROLPLANE-API.md)."""
        if self.source == "ntp":
            return f"clock offset {self.offset_s:+.3f} s from NTP server {self.server}"
        if self.source == "http":
            return (f"clock offset {self.offset_s:+.3f} s +/- {self.error_s:.3f} s from the "
                    f"Control Plane's time (two-way HTTP to {self.server})")
        return f"clock skew {self.offset_s:+.3f} s"


def clock_reading(*, clock_unix: float | None, cp_clock: float, source: str | None,
                  offset_s: float | None, error_s: float | None,
                  server: str | None) -> ClockReading | None:
    """The figure a node's clock is judged by (the Control Plane's registration check and
    ``flexlab certify`` alike).

    The node measures its own offset and that is the figure judged: by NTP when the
    site offers it (option 42), else by a two-way exchange with the Control Plane's
    ``GET /api/v1/time`` (stamp, request, stamp: the server's time falls between the
    stamps, so the offset is known to within half the round trip, ``clock_error_s``).
    Comparing ``clock_unix`` with the Control Plane's clock at arrival would also count
    the request's transit and the time a slow guest takes to build and send it after
    the stamp (1-2 s for a VM under TCG on a loaded host) and reject a good clock. A
    two-way offset is rejected only when it is beyond the limit by more than its bound:
    a clock that is really off (seconds) still is. Only a node that measured nothing
    is judged by ``clock_unix`` against the Control Plane's clock at arrival; None when
    it reported that neither.
    """
    if source == "ntp" and offset_s is not None:
        return ClockReading(offset_s, 0.0, "ntp", server)
    if source == "http" and offset_s is not None and error_s is not None:
        return ClockReading(offset_s, error_s, "http", server)
    if clock_unix is None:
        return None  # measured nothing and reported no clock: nothing to judge
    return ClockReading(clock_unix - cp_clock, 0.0, "arrival")


def _clock_reasons(facts: Facts, cp_clock: float) -> list[str]:
    """The clock must be within MAX_CLOCK_SKEW_S of the site's time source (clock_reading)."""
    reading = clock_reading(clock_unix=facts.clock_unix, cp_clock=cp_clock,
                            source=facts.clock_source, offset_s=facts.clock_offset_s,
                            error_s=facts.clock_error_s, server=facts.clock_server)
    if reading is not None and reading.too_far:
        return [f"{reading.describe()} exceeds {MAX_CLOCK_SKEW_S:g} s"]
    return []
