"""A TFTP client as PXE firmware runs it: options, windows, the EDK2 size probe, retries.

It reads with the kernel's UDP stack on the machine's own device and keeps
only the size and SHA-256 of what it fetched (a thousand machines must not
hold a thousand copies of ipxe.efi).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from harness.machines.sim.errors import BootFailed

RRQ, DATA, ACK, ERROR, OACK = 1, 3, 4, 5, 6
#: the shortest wait, in wall seconds, for a TFTP server's next packet at any time scale.
#: ``time_scale`` shortens what firmware waits on purpose (offer windows, backoff); a
#: server's answer takes what the host takes. The ROM's own first wait is 1 s or more,
#: but at time scale 0.1 the four tries of (1, 2, 4, 8) s were 1.5 s in all, and a loaded
#: CI host stalled dnsmasq longer than that (PXE-E35 mid-file in the firmware matrix).
PEER_WAIT_FLOOR = 1.0


def scaled_timeouts(timeouts: tuple[float, ...], scale: float,
                    floor: float = PEER_WAIT_FLOOR) -> tuple[float, ...]:
    """Firmware's TFTP waits at ``scale``, none below ``floor`` (nor above the real wait)."""
    return tuple(max(t * scale, min(t, floor)) for t in timeouts)


@dataclass
class TftpResult:
    """What one transfer got: size, digest, the options the server acknowledged."""

    filename: str
    size: int = 0
    sha256: str = ""
    oack: dict[str, str] = field(default_factory=dict)
    blocks: int = 0
    retransmits: int = 0
    foreign_packets: int = 0


def rrq(filename: str, options: dict[str, str]) -> bytes:
    """A read request in octet mode with ``options`` (RFC 2347), in the given order."""
    out = struct.pack("!H", RRQ) + filename.encode() + b"\0octet\0"
    for key, value in options.items():
        out += key.encode() + b"\0" + value.encode() + b"\0"
    return out


def parse_oack(data: bytes) -> dict[str, str]:
    """Options of an OACK packet (opcode stripped by the caller)."""
    parts = data.split(b"\0")
    return {parts[i].decode().lower(): parts[i + 1].decode()
            for i in range(0, len(parts) - 1, 2) if parts[i]}


def error_packet(code: int, message: str) -> bytes:
    """A TFTP ERROR packet."""
    return struct.pack("!HH", ERROR, code) + message.encode() + b"\0"


_BUFFERS = threading.local()


def _receive_buffer() -> bytearray:
    """This thread's receive buffer (each fleet's loop runs in a thread of its own)."""
    buf: bytearray | None = getattr(_BUFFERS, "buf", None)
    if buf is None:
        buf = _BUFFERS.buf = bytearray(65536)
    return buf


class TftpClient:
    """Fetch files over one bound UDP socket, with timeouts already scaled to wall seconds."""

    def __init__(self, sock: socket.socket, server: str, timeouts: tuple[float, ...],
                 port: int = 69) -> None:
        self.sock = sock
        self.server = server
        self.port = port
        self.timeouts = timeouts
        self.loop = asyncio.get_running_loop()
        # transfer ids this client aborted (the size probe's ERROR 8): a late resend from
        # one of them must not be taken for the answer to the next request on this port
        self.closed: set[tuple[str, int]] = set()
        self.stale_packets = 0
        self.blocks = 0  # DATA blocks taken so far, over every transfer (live progress)
        self._queue: collections.deque[tuple[bytes, tuple[str, int]]] = collections.deque()
        self._waiter: asyncio.Future[bool] | None = None
        # One timer per client, pushed out as packets arrive, instead of a timeout armed
        # and cancelled around every block: in a storm a thousand lockstep transfers put
        # two heap operations per DATA block on the fleet's one loop (see _recv).
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def _readable(self) -> None:
        """The socket's reader: take every datagram waiting, wake the transfer."""
        recv, buf = self.sock.recvfrom_into, _receive_buffer()
        while True:
            try:
                size, addr = recv(buf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # the socket went away under a power cut: nothing more comes
                break
            # into a reused buffer, then copied at its size: recvfrom(65536) allocated
            # 64 KiB for every 516-byte block
            self._queue.append((bytes(buf[:size]), addr))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def _on_timer(self) -> None:
        """The client's timer: time out the wait it was set for, or follow a later deadline."""
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # nobody waits: the next wait arms it again
        if self.loop.time() < self._deadline:
            self._timer = self.loop.call_at(self._deadline, self._on_timer)
            return
        waiter.set_result(False)

    def _send(self, packet: bytes, dest: tuple[str, int]) -> bool:
        """Send at once if the socket takes it; False when the caller must await instead."""
        try:
            self.sock.sendto(packet, dest)
        except (BlockingIOError, InterruptedError):
            return False
        return True

    async def _sendto(self, packet: bytes, dest: tuple[str, int]) -> None:
        if not self._send(packet, dest):
            await self.loop.sock_sendto(self.sock, packet, dest)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Watch the socket for the length of one transfer.

        One reader for the whole transfer instead of asyncio's ``sock_recvfrom``, which
        adds and removes an epoll registration for every datagram it waits for: two
        system calls per DATA block, for every machine of a storm on one loop.
        """
        self.loop.add_reader(self.sock.fileno(), self._readable)
        try:
            yield
        finally:
            self.loop.remove_reader(self.sock.fileno())
            self._queue.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    async def _recv(self, timeout: float) -> tuple[bytes, tuple[str, int]] | None:
        """The next datagram, or None once ``timeout`` seconds passed without one.

        Not asyncio.timeout or wait_for: those arm and cancel a timer per call. The
        deadline moves instead, and the one timer follows it when it fires (_on_timer);
        a power cut cancels the task, and with it the plain future it awaits.
        """
        if not self._queue:
            loop = self.loop
            deadline = self._deadline = loop.time() + timeout
            timer = self._timer
            if timer is None or timer.when() > deadline:  # none set, or set for later
                if timer is not None:
                    timer.cancel()
                self._timer = loop.call_at(deadline, self._on_timer)
            waiter = self._waiter = loop.create_future()
            try:
                if not await waiter:
                    return None
            finally:
                self._waiter = None
        return self._queue.popleft()

    async def probe_size(self, filename: str, blksize: int | None) -> int:
        """EDK2's size probe: RRQ with ``tsize 0``, read the OACK, abort with ERROR 8."""
        with self._reading():
            return await self._probe_size(filename, blksize)

    async def _probe_size(self, filename: str, blksize: int | None) -> int:
        opts = {"tsize": "0"}
        if blksize:
            opts["blksize"] = str(blksize)
        packet = rrq(filename, opts)
        for timeout in self.timeouts:
            await self.loop.sock_sendto(self.sock, packet, (self.server, self.port))
            got = await self._recv(timeout)
            if got is None:
                continue
            data, addr = got
            opcode = struct.unpack("!H", data[:2])[0]
            if opcode == ERROR:
                raise BootFailed("PXE-E3B", f"TFTP error for {filename}: {data[4:-1]!r}")
            self.closed.add(addr)
            if opcode == OACK:
                oack = parse_oack(data[2:])
                await self.loop.sock_sendto(self.sock, error_packet(8, "size probe"), addr)
                return int(oack.get("tsize", "0"))
            await self.loop.sock_sendto(self.sock, error_packet(8, "size probe"), addr)
            return 0
        raise BootFailed("PXE-E32", f"TFTP open timeout for {filename}")

    async def get(self, filename: str, *, blksize: int | None, tsize: bool,
                  windowsize: int | None) -> TftpResult:
        """Read ``filename``; acknowledge per window; retry on timeout only (TFTP-7)."""
        with self._reading():
            return await self._get(filename, blksize=blksize, tsize=tsize,
                                   windowsize=windowsize)

    async def _get(self, filename: str, *, blksize: int | None, tsize: bool,
                   windowsize: int | None) -> TftpResult:
        opts: dict[str, str] = {}
        if blksize:
            opts["blksize"] = str(blksize)
        if tsize:
            opts["tsize"] = "0"
        if windowsize:
            opts["windowsize"] = str(windowsize)
        result = TftpResult(filename)
        digest = hashlib.sha256()
        size_block = 512
        window = 1
        expected = 1
        peer: tuple[str, int] | None = None
        last_sent = rrq(filename, opts)
        dest: tuple[str, int] = (self.server, self.port)
        await self.loop.sock_sendto(self.sock, last_sent, dest)
        tries = 0
        in_window = 0
        while True:
            got = await self._recv(self.timeouts[min(tries, len(self.timeouts) - 1)])
            if got is None:
                tries += 1
                if tries >= len(self.timeouts):
                    raise BootFailed("PXE-E32" if peer is None else "PXE-E35",
                                     f"TFTP timeout reading {filename} at block {expected}")
                result.retransmits += 1
                in_window = 0
                await self._sendto(last_sent, dest)
                continue
            data, addr = got
            if addr in self.closed:
                self.stale_packets += 1  # a resend from a transfer we already aborted
                continue
            if peer is not None and addr != peer:
                result.foreign_packets += 1  # RFC 1350 §4: tell the stranger, keep going
                await self._sendto(error_packet(5, "unknown transfer id"), addr)
                continue
            opcode = data[0] << 8 | data[1] if len(data) >= 2 else -1
            if opcode == ERROR:
                code = struct.unpack("!H", data[2:4])[0]
                text = data[4:].rstrip(b"\0").decode(errors="replace")
                raise BootFailed("PXE-E3B", f"TFTP error {code} for {filename}: {text}")
            if peer is None:
                peer = addr
                dest = addr
            if opcode == OACK:
                result.oack = parse_oack(data[2:])
                size_block = int(result.oack.get("blksize", "512"))
                window = int(result.oack.get("windowsize", "1"))
                last_sent = struct.pack("!HH", ACK, 0)
                await self._sendto(last_sent, dest)
                tries = 0
                continue
            if opcode != DATA or len(data) < 4:
                continue
            block = data[2] << 8 | data[3]
            payload = memoryview(data)[4:]
            if block != expected & 0xFFFF:
                # out of order / duplicate: re-acknowledge what we have (RFC 7440 §4)
                if block != (expected - 1) & 0xFFFF:
                    last_sent = struct.pack("!HH", ACK, (expected - 1) & 0xFFFF)
                    await self._sendto(last_sent, dest)
                    in_window = 0
                continue
            tries = 0
            digest.update(payload)
            result.size += len(payload)
            result.blocks += 1
            self.blocks += 1
            expected += 1
            in_window += 1
            last_block = len(payload) < size_block
            if last_block or in_window >= window:
                last_sent = struct.pack("!HH", ACK, block)
                if not self._send(last_sent, dest):  # the hot path: no coroutine per ACK
                    await self.loop.sock_sendto(self.sock, last_sent, dest)
                in_window = 0
            if last_block:
                result.sha256 = digest.hexdigest()
                return result
