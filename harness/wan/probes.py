"""Small network probes for the WAN: ICMP echo, TCP connect, HTTP GET.

They open ordinary sockets, so they run wherever the calling thread's network
namespace is: call them through a :class:`harness.lab.nsthread.NamespaceWorker` to probe
from inside a lab host (the harness never joins the lab). The lab hosts have no ping
binary, hence the raw-socket echo.
"""

from __future__ import annotations

import errno
import secrets
import select
import socket
import statistics
import struct
import time
import urllib.request
from dataclasses import dataclass

from harness.machines.sim.frames import checksum

ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY = 8, 0


@dataclass(frozen=True)
class EchoStats:
    """How many echo requests went out, how many were answered, and the round trips."""

    sent: int
    received: int
    rtts_s: tuple[float, ...] = ()

    @property
    def loss(self) -> float:
        """Share of requests without an answer (0.0-1.0)."""
        return 1.0 - self.received / self.sent if self.sent else 0.0

    @property
    def median_rtt_s(self) -> float | None:
        """Median round trip of the answered requests (None if none was answered)."""
        return statistics.median(self.rtts_s) if self.rtts_s else None


@dataclass(frozen=True)
class ConnectResult:
    """Outcome of one TCP connect: ``error`` is the errno name (``""`` when connected)."""

    connected: bool
    error: str
    elapsed_s: float


def icmp_echo(dst: str, count: int = 1, interval: float = 0.01,
              timeout: float = 1.0) -> EchoStats:
    """Send ``count`` echo requests to ``dst`` ``interval`` apart and count the replies
    that arrive within ``timeout`` of the last one (raw socket: needs root)."""
    ident = secrets.randbits(16)
    sent_at: dict[int, float] = {}
    rtts: dict[int, float] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.setblocking(False)
        for seq in range(count):
            body = b"flexlab-wan-probe"
            head = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, seq)
            packet = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, checksum(head + body),
                                 ident, seq) + body
            sent_at[seq] = time.monotonic()
            try:
                sock.sendto(packet, (dst, 0))
            except OSError as exc:  # no route (the WAN is down): nothing went out
                if exc.errno not in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                    raise
            _collect(sock, ident, sent_at, rtts, time.monotonic() + interval)
        _collect(sock, ident, sent_at, rtts, time.monotonic() + timeout, until=count)
    return EchoStats(count, len(rtts), tuple(rtts[s] for s in sorted(rtts)))


def _collect(sock: socket.socket, ident: int, sent_at: dict[int, float],
             rtts: dict[int, float], deadline: float, until: int | None = None) -> None:
    while (left := deadline - time.monotonic()) > 0:
        if until is not None and len(rtts) >= until:
            return
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            continue
        data = sock.recv(2048)
        ihl = (data[0] & 0x0F) * 4
        kind, _code, _sum, rid, seq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
        if kind == ICMP_ECHO_REPLY and rid == ident and seq in sent_at and seq not in rtts:
            rtts[seq] = time.monotonic() - sent_at[seq]


def tcp_connect(dst: str, port: int, timeout: float = 3.0) -> ConnectResult:
    """Try one TCP connect; a refusal, an ICMP unreachable or a timeout is a result."""
    start = time.monotonic()
    try:
        with socket.create_connection((dst, port), timeout=timeout):
            return ConnectResult(True, "", time.monotonic() - start)
    except TimeoutError:
        return ConnectResult(False, "ETIMEDOUT", time.monotonic() - start)
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, str(exc))
        return ConnectResult(False, name, time.monotonic() - start)


def http_get(url: str, timeout: float = 5.0) -> str:
    """Body of ``GET url`` (no proxy: a lab host has none)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as resp:
        return resp.read().decode(errors="replace")

