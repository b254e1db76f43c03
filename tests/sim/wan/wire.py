"""Reading the WAN segment's capture while the lab runs (tcpdump writes it packet by packet)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from harness.capture.errors import CaptureError
from harness.capture.pcapfile import iter_ip_frames
from harness.wait import wait_until

T = TypeVar("T")

TCP, UDP = 6, 17


@dataclass(frozen=True)
class WireFrame:
    """One IPv4 frame on the wire: addresses, protocol, ports (0 when not TCP/UDP)."""

    number: int
    src: str
    dst: str
    protocol: int
    sport: int
    dport: int


def wire_frames(pcap: Path) -> list[WireFrame]:
    """Every IPv4 frame captured so far."""
    frames = []
    for number, frame in iter_ip_frames(str(pcap)):
        if frame is None:
            continue
        ip = frame.ip
        ihl = (ip[0] & 0x0F) * 4
        proto = ip[9]
        sport = dport = 0
        if proto in (TCP, UDP) and len(ip) >= ihl + 4:
            sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
        frames.append(WireFrame(number, ".".join(map(str, ip[12:16])),
                                ".".join(map(str, ip[16:20])), proto, sport, dport))
    return frames


def _readable(read: Callable[[], T]) -> Callable[[], T | None]:
    """``read`` as a probe: a record tcpdump is writing at this instant reads as corrupt;
    the next poll sees it whole."""

    def probe() -> T | None:
        try:
            return read()
        except CaptureError:
            return None

    return probe


def frame_count(pcap: Path) -> int:
    """How many records (of any kind) the capture holds now (plus one: never zero, so
    it can be a wait's result)."""
    return wait_until(_readable(lambda: 1 + sum(1 for _ in iter_ip_frames(str(pcap)))),
                      timeout=5.0, what=f"{pcap.name} to be readable") - 1


def frames_after(pcap: Path, start: int, until: int = 1, timeout: float = 5.0,
                 what: str = "frames on the WAN") -> list[WireFrame]:
    """IPv4 frames after record ``start``, waiting until at least ``until`` have been
    written (tcpdump flushes each packet, but after the sender returned)."""

    def enough() -> list[WireFrame] | None:
        frames = _readable(lambda: wire_frames(pcap))()
        after = [f for f in frames or [] if f.number > start]
        return after if len(after) >= until else None

    return wait_until(enough, timeout=timeout, what=what,
                      evidence=lambda: "\n".join(map(str, wire_frames(pcap)[-20:])))
