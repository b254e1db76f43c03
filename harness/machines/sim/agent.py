"""The emulated node agent: what the real one (nodeimage/files/agent.sh) says to the Control Plane.

Facts are configurable so tests can make a machine too small, skewed or
non-x86 and watch the Control Plane reject it.
"""

from __future__ import annotations

import struct
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

    def payload(self, mac: str, firmware: str, clock_unix: float,
                ipv4: str | None = None) -> dict[str, Any]:
        """The ``POST /api/v1/nodes/register`` body (docs/CONTROLPLANE-API.md).

        ``clock_unix`` is the agent's clock as it stands (after any NTP step); ``ipv4``
        the booting NIC's address, which the Control Plane may put in DNS.
        """
        nic: dict[str, Any] = {"name": "eth0", "mac": mac}
        if ipv4:
            nic["ipv4"] = ipv4
        return {
            "mac": mac,
            "facts": {
                "arch": self.arch,
                "cpu_cores": self.cpu_cores,
                "memory_bytes": self.memory_bytes,
                "disks": [{"name": d.name, "size_bytes": d.size_bytes} for d in self.disks],
                "nics": [nic],
                "firmware": firmware,
                "vendor": self.vendor,
                "clock_unix": clock_unix,
                **self.extra,
            },
        }


NTP_EPOCH = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)


def _ntp_stamp(unix: float) -> bytes:
    secs = unix + NTP_EPOCH
    return struct.pack("!II", int(secs) & 0xFFFFFFFF, int((secs % 1) * 2**32) & 0xFFFFFFFF)


def _from_stamp(raw: bytes) -> float:
    secs, frac = struct.unpack("!II", raw)
    return secs - NTP_EPOCH + frac / 2**32


def sntp_request(t1: float) -> bytes:
    """An SNTP client request (LI 0, version 4, mode 3) stamped with the client's clock."""
    return b"\x23" + b"\0" * 39 + _ntp_stamp(t1)


def sntp_offset(reply: bytes, t1: float, t4: float) -> float:
    """The clock offset (server minus client) from one exchange, as RFC 4330 computes it:
    ((t2 - t1) + (t3 - t4)) / 2. A reply that is not a server's answer to this request
    (wrong mode, stratum 0 kiss-o'-death, origin not our t1) raises ValueError."""
    if len(reply) < 48:
        raise ValueError(f"NTP reply of {len(reply)} bytes")
    if reply[0] & 0x7 != 4:
        raise ValueError(f"NTP reply mode {reply[0] & 0x7}, not 4 (server)")
    if reply[1] == 0:
        raise ValueError(f"kiss-o'-death from the NTP server: {reply[12:16]!r}")
    if reply[24:32] != _ntp_stamp(t1):
        raise ValueError("NTP reply does not answer our request (origin timestamp)")
    t2, t3 = _from_stamp(reply[32:40]), _from_stamp(reply[40:48])
    return ((t2 - t1) + (t3 - t4)) / 2
