"""Conflict watch: notice another ProxyDHCP answering a MAC this proxy serves (SITE-1).

A UDP socket on port 68, bound to each served interface, sees the broadcast
offers on the segment. An offer with yiaddr 0 and option 60 `PXEClient` whose
server id is not ours, to a MAC we serve, is a conflict: it is logged, counted
and POSTed to the Control Plane's `/api/v1/conflicts` (once per MAC and server
per `repeat_after` seconds, so a retransmitting client does not flood the CP).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from bootproxy.dhcp.codec import BOOTREPLY, DhcpPacket, MessageType, Opt, parse
from bootproxy.dhcp.server import open_udp_socket
from bootproxy.errors import CodecError
from bootproxy.logs import log_event
from bootproxy.metrics import Registry

__all__ = ["ConflictWatch", "is_foreign_proxy_offer"]

_LOG = logging.getLogger("bootproxy.conflicts")
CLIENT_PORT = 68

Reporter = Callable[[dict[str, Any]], Awaitable[int]]


def is_foreign_proxy_offer(packet: DhcpPacket, own_addresses: set[str]) -> str | None:
    """Return the other server's address if `packet` is a ProxyDHCP offer not sent by us."""
    if packet.op != BOOTREPLY or packet.message_type != MessageType.OFFER:
        return None
    if packet.yiaddr != "0.0.0.0":
        return None
    vendor = packet.get(Opt.VENDOR_CLASS) or b""
    if not vendor.startswith(b"PXEClient"):
        return None
    sid = packet.get(Opt.SERVER_ID)
    server = socket.inet_ntoa(sid) if sid is not None and len(sid) == 4 else packet.siaddr
    if server in own_addresses:
        return None
    return server


@dataclass(eq=False, kw_only=True)
class ConflictWatch(asyncio.DatagramProtocol):
    """Listener on UDP 68 of one interface that reports foreign proxy offers to served MACs.

    A dataclass: its constructor only stores what it is given (eq=False keeps
    identity equality and hashing, as for any protocol object).
    """

    iface: str
    own_addresses: set[str]
    served: Callable[[str], bool]
    registry: Registry
    report: Reporter | None = None
    port: int = CLIENT_PORT
    bind_device: bool = True
    repeat_after: float = 60.0
    transport: asyncio.DatagramTransport | None = field(default=None, init=False)
    _last_report: dict[tuple[str, str], float] = field(default_factory=dict, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    async def start(self) -> None:
        """Bind UDP 68 on the interface (shared with any DHCP client via SO_REUSEADDR)."""
        sock = open_udp_socket(self.iface if self.bind_device else None, self.port)
        if self.port == 0:
            self.port = sock.getsockname()[1]
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: self, sock=sock)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport so `close` can stop it."""
        # CPython's selector transport does not subclass DatagramTransport; it has sendto.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def close(self) -> None:
        """Stop listening."""
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """Check one packet seen on port 68."""
        try:
            packet = parse(data)
        except CodecError:
            return
        other = is_foreign_proxy_offer(packet, self.own_addresses)
        if other is None or not self.served(packet.mac):
            return
        self.registry.inc("bootproxy_conflicts_total", interface=self.iface)
        seen_at = time.time()  # unix seconds: the Control Plane's ConflictIn.seen_at is a float
        log_event(
            _LOG, "conflict", logging.WARNING,
            mac=packet.mac, other_server=other, segment=self.iface, source=addr[0],
        )
        key = (packet.mac, other)
        now = time.monotonic()
        if now - self._last_report.get(key, -1e9) < self.repeat_after or self.report is None:
            return
        self._last_report[key] = now
        doc = {"mac": packet.mac, "other_server": other, "segment": self.iface, "seen_at": seen_at}
        task = asyncio.get_running_loop().create_task(self._post(doc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, doc: dict[str, Any]) -> None:
        assert self.report is not None
        try:
            status = await self.report(doc)
        except Exception as exc:  # the CP being down must never stop the watch
            log_event(_LOG, "conflict_report_failed", logging.WARNING, error=repr(exc))
            return
        if status >= 300:
            log_event(_LOG, "conflict_report_refused", logging.WARNING, status=status)
