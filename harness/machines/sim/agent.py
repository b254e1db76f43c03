"""The emulated node agent: what the real one (nodeimage/files/agent.sh) says to the Control Plane.

Facts are configurable so tests can make a machine too small, skewed or
non-x86 and watch the Control Plane reject it.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

#: ask the kernel to stamp each datagram's arrival (CLOCK_REALTIME, ns) in an ancillary message
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


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
                ipv4: str | None = None,
                clock: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``POST /api/v1/nodes/register`` body (docs/CONTROLPLANE-API.md).

        ``clock_unix`` is the agent's clock as it stands (after any NTP step); ``ipv4``
        the booting NIC's address, which the Control Plane may put in DNS; ``clock``
        the measured offset the Control Plane judges instead (:func:`http_clock_facts`).
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
                **(clock or {}),
                **self.extra,
            },
        }


#: at most this many two-way exchanges with the Control Plane's time, fewer once one
#: decides the verdict against the Control Plane's limit, MAX_CLOCK_SKEW_S (as
#: nodeimage/files/agent.sh, whose CLOCK_TRIES and CLOCK_LIMIT_S a unit test ties to these)
CLOCK_TRIES = 3


@dataclass(frozen=True)
class ClockExchange:
    """One two-way exchange with a time URL answering ``{"unix": ...}``: the agent's
    clock just before the request was written (``sent``) and when the answer was in
    (``received``), and the server's time in the answer.

    The server read its clock between the two, so the agent's clock minus the server's
    is the midpoint minus ``server``, right to within half the round trip however slow
    the network, the server or this machine (an emulated one waits on a shared event
    loop): the figure and bound the Control Plane judges where the site offers no NTP.
    """

    sent: float
    server: float
    received: float

    @property
    def offset(self) -> float:
        """The agent's clock minus the server's."""
        return (self.sent + self.received) / 2 - self.server

    @property
    def error(self) -> float:
        """The most ``offset`` can be off: half the round trip."""
        return (self.received - self.sent) / 2

    def decides(self, limit: float) -> bool:
        """Whether this exchange alone settles the clock against ``limit``: within it
        even at the far end of the bound, or beyond it even at the near end. Another
        exchange could then only narrow the bound, at a request per node in a storm."""
        return abs(self.offset) + self.error <= limit or abs(self.offset) - self.error > limit


def http_clock_facts(url: str, exchanges: list[ClockExchange]) -> dict[str, Any]:
    """The registration's clock facts from the exchange with the shortest round trip
    (the least disturbed); empty without one (the Control Plane then judges clock_unix)."""
    if not exchanges:
        return {}
    best = min(exchanges, key=lambda e: e.error)
    return {"clock_source": "http", "clock_server": url,
            "clock_offset_s": round(best.offset, 6), "clock_error_s": round(best.error, 6)}


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


def stamp_arrivals(sock: socket.socket) -> None:
    """Have the kernel record when each datagram reaches ``sock`` (see :func:`recv_arrival`)."""
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)


async def recv_arrival(sock: socket.socket, size: int) -> tuple[bytes, float]:
    """One datagram from non-blocking ``sock`` and the Unix time it arrived.

    The arrival time is the kernel's stamp (:func:`stamp_arrivals`), not the moment this
    coroutine got to run: a real agent's SNTP exchange runs on its own CPU, while an
    emulated one shares an event loop with a thousand machines, and reading the clock
    after the loop's lag would count that lag as network delay (an offset error of half
    of it, enough for the Control Plane to reject the node's clock in a storm).
    The kernel turns its stamping on through deferred work after the first
    :func:`stamp_arrivals`; a datagram that arrives before then is stamped when read,
    which is no worse than reading the clock here.
    """
    loop = asyncio.get_running_loop()
    while True:
        try:
            data, ancillary, _flags, _addr = sock.recvmsg(size, socket.CMSG_SPACE(16))
        except (BlockingIOError, InterruptedError):
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(sock.fileno(), _wake, ready)
            try:
                await ready
            finally:
                loop.remove_reader(sock.fileno())
            continue
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                sec, nsec = struct.unpack("qq", raw[:16])
                return data, sec + nsec / 1e9
        return data, time.time()  # no stamp (option not set): the best this side can do


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)
