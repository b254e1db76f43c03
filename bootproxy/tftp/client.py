"""A small asyncio TFTP read client with option support (blksize, tsize, timeout, windowsize).

Used by the unit tests, the benchmarks and the sim tests to fetch files from
any TFTP server; it is not part of the Boot Proxy's serving path.
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


class _ClientProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, (addr[0], addr[1])))


async def fetch(host: str, port: int, filename: str, options: dict[str, str] | None = None,
                mode: str = "octet", timeout: float = 2.0, retries: int = 5,
                source: str = "0.0.0.0") -> FetchResult:
    """Read ``filename`` from a TFTP server; raise :class:`TransferError` on failure.

    With a windowsize option the client ACKs every window's last block, and on
    a gap ACKs the last block it got in order, as RFC 7440 §4 describes.
    """
    options = dict(options or {})
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        _ClientProtocol, local_addr=(source, 0), family=socket.AF_INET)
    try:
        return await _run(transport, proto, (host, port), filename, options, mode, timeout,
                          retries)
    finally:
        transport.close()


async def _run(transport: asyncio.DatagramTransport, proto: _ClientProtocol,
               server: tuple[str, int], filename: str, options: dict[str, str], mode: str,
               timeout: float, retries: int) -> FetchResult:
    result = FetchResult(b"")
    last_sent = encode_request(Request(Opcode.RRQ, filename, mode, options))
    transport.sendto(last_sent, server)
    peer: tuple[str, int] | None = None
    blksize, window = 512, 1
    chunks: list[bytes] = []
    expected = 1
    in_window = 0
    misses = 0
    while True:
        try:
            data, addr = await asyncio.wait_for(proto.queue.get(), timeout)
        except TimeoutError:
            misses += 1
            if misses > retries:
                raise TransferError(f"timed out fetching {filename!r} from {server}") from None
            transport.sendto(last_sent, peer or server)
            continue
        if peer is None:
            if addr[0] != server[0]:
                continue
            peer = addr
        elif addr != peer:
            transport.sendto(encode_error(ErrorCode.UNKNOWN_TID, "unknown transfer id"), addr)
            continue
        try:
            packet = parse_packet(data)
        except PacketError:
            continue
        result.packets_received += 1
        if isinstance(packet, Error):
            raise TransferError(f"server refused {filename!r}: {packet.message}", packet.code)
        if isinstance(packet, OptionAck):
            if expected != 1 or chunks:
                continue
            result.oack = packet.options
            blksize = int(packet.options.get("blksize", blksize))
            window = int(packet.options.get("windowsize", window))
            last_sent = encode_ack(0)
            transport.sendto(last_sent, peer)
            result.acks_sent += 1
            misses = 0
            continue
        if not isinstance(packet, Data):
            continue
        if packet.block != expected & 0xFFFF:
            if in_window:  # a gap: tell the server where to restart (RFC 7440)
                last_sent = encode_ack(expected - 1)
                transport.sendto(last_sent, peer)
                result.acks_sent += 1
                in_window = 0
            continue
        misses = 0
        chunks.append(packet.payload)
        in_window += 1
        final = len(packet.payload) < blksize
        if final or in_window >= window:
            last_sent = encode_ack(expected)
            transport.sendto(last_sent, peer)
            result.acks_sent += 1
            in_window = 0
        expected += 1
        if final:
            result.data = b"".join(chunks)
            return result
