"""The emulated node agent: what the real one (nodeimage/files/agent.sh) says to the Control Plane.

Facts are configurable so tests can make a machine too small, skewed or
non-x86 and watch the Control Plane reject it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Disk:
    """One block device the agent reports."""

    name: str
    size_bytes: int


@dataclass(frozen=True)
class NodeFacts:
    """Hardware facts the agent reports; ``clock_skew`` shifts its clock (seconds)."""

    arch: str = "x86_64"
    cpu_cores: int = 4
    memory_bytes: int = 8 * 1024**3
    disks: tuple[Disk, ...] = (Disk("vda", 20 * 10**9),)
    vendor: str = "flexlab sim"
    clock_skew: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def payload(self, mac: str, firmware: str, now_unix: float) -> dict[str, Any]:
        """The ``POST /api/v1/nodes/register`` body (docs/CONTROLPLANE-API.md)."""
        return {
            "mac": mac,
            "facts": {
                "arch": self.arch,
                "cpu_cores": self.cpu_cores,
                "memory_bytes": self.memory_bytes,
                "disks": [{"name": d.name, "size_bytes": d.size_bytes} for d in self.disks],
                "nics": [{"name": "eth0", "mac": mac}],
                "firmware": firmware,
                "vendor": self.vendor,
                "clock_unix": now_unix + self.clock_skew,
                **self.extra,
            },
        }
