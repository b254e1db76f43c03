"""A small asyncio TFTP read client with option support (blksize, tsize, timeout, windowsize).

Used by the unit tests, the benchmarks and the sim tests to fetch files from
any TFTP server; it is not part of the Boot Proxy's serving path.  Packets are
handled in the protocol callback (no queue, no task per packet) so the client
is cheap enough not to hide the server's speed in benchmarks.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

from bootproxy.tftp.errors import PacketError, TransferError
from bootproxy.tftp.packets import (
    Data,
    Error,
    ErrorCode,
    Opcode,
    OptionAck,
    Request,
    encode_ack,
    encode_error,
    encode_request,
    parse_packet,
)


@dataclass
class FetchResult:
    """What a fetch returned: the bytes, the options the server accepted, and packet counts."""

    data: bytes
    oack: dict[str, str] = field(default_factory=dict)
    packets_received: int = 0
    acks_sent: int = 0


class _Reader(asyncio.DatagramProtocol):
    """Client side of one read transfer, driven by datagrams and a deadline timer."""

    def __init__(self, server: tuple[str, int], filename: str, options: dict[str, str],
                 mode: str, timeout: float, retries: int) -> None:
        self.server = server
        self.filename = filename
        self.timeout = timeout
        self.retries = retries
        self.request = encode_request(Request(Opcode.RRQ, filename, mode, options))
        self.loop = asyncio.get_running_loop()
        self.done: asyncio.Future[FetchResult] = self.loop.create_future()
        self.result = FetchResult(b"")
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: tuple[str, int] | None = None
        self.blksize, self.window = 512, 1
        self.chunks: list[bytes] = []
        self.expected = 1
        self.in_window = 0
        self.misses = 0
        self.last_sent = self.request
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send(self.request, self.server)

    def _send(self, datagram: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.last_sent = datagram
        self.transport.sendto(datagram, addr)
        self.deadline = self.loop.time() + self.timeout
        if self.timer is None:
            self.timer = self.loop.call_at(self.deadline, self._on_timer)

    def _ack(self, block: int) -> None:
        assert self.peer is not None
        self._send(encode_ack(block), self.peer)
        self.result.acks_sent += 1

    def _on_timer(self) -> None:
        self.timer = None
        if self.done.done():
            return
        if self.loop.time() < self.deadline:
            self.timer = self.loop.call_at(self.deadline, self._on_timer)
            return
        self.misses += 1
        if self.misses > self.retries:
            self._fail(TransferError(f"timed out fetching {self.filename!r} from {self.server}"))
            return
        self._send(self.last_sent, self.peer or self.server)

    def _fail(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.done.done():
            return
        addr = (addr[0], addr[1])
        if self.peer is None:
            if addr[0] != self.server[0]:
                return
            self.peer = addr
        elif addr != self.peer:
            assert self.transport is not None
            self.transport.sendto(encode_error(ErrorCode.UNKNOWN_TID, "unknown transfer id"),
                                  addr)
            return
        try:
            packet = parse_packet(data)
        except PacketError:
            return
        self.result.packets_received += 1
        if isinstance(packet, Error):
            self._fail(TransferError(f"server refused {self.filename!r}: {packet.message}",
                                     packet.code))
        elif isinstance(packet, OptionAck):
            if self.expected == 1 and not self.chunks:
                self.result.oack = packet.options
                self.blksize = int(packet.options.get("blksize", self.blksize))
                self.window = int(packet.options.get("windowsize", self.window))
                self.misses = 0
                self._ack(0)
        elif isinstance(packet, Data):
            self._data(packet)

    def _data(self, packet: Data) -> None:
        if packet.block != self.expected & 0xFFFF:
            if self.in_window:  # a gap: tell the server where to restart (RFC 7440)
                self._ack(self.expected - 1)
                self.in_window = 0
            return
        self.misses = 0
        self.chunks.append(packet.payload)
        self.in_window += 1
        final = len(packet.payload) < self.blksize
        if final or self.in_window >= self.window:
            self._ack(self.expected)
            self.in_window = 0
        self.expected += 1
        if final:
            self.result.data = b"".join(self.chunks)
            self.done.set_result(self.result)


async def fetch(host: str, port: int, filename: str, options: dict[str, str] | None = None,
                mode: str = "octet", timeout: float = 2.0, retries: int = 5,
                source: str = "0.0.0.0") -> FetchResult:
    """Read ``filename`` from a TFTP server; raise :class:`TransferError` on failure.

    With a windowsize option the client ACKs every window's last block, and on
    a gap ACKs the last block it got in order, as RFC 7440 §4 describes.
    """
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Reader((host, port), filename, dict(options or {}), mode, timeout, retries),
        local_addr=(source, 0), family=socket.AF_INET)
    try:
        return await proto.done
    finally:
        if proto.timer is not None:
            proto.timer.cancel()
        transport.close()
