"""The thread that moves every running transfer's datagrams: epoll, recvfrom, state machine, sendto.

Why a thread of its own: lockstep TFTP (windowsize 1, what most firmware asks for)
is one round trip per block, so its speed is the server's per-packet latency.
Through asyncio each datagram took the selector, a handle, the transport and the
protocol, and the profile (docs/BENCH-TFTP-HTTP.md) put the Boot Proxy at about
0.6x tftpd-hpa; a bare epoll loop over the transfer sockets does the same work
with a few calls per packet.  The protocol stays in ``transfer.py``: this module
only feeds it packets and timeouts, exactly as the asyncio protocol did.

Threading contract: the event loop creates a :class:`Transfer` and hands it over
with :meth:`TransferPump.add`; from then on only the pump thread touches its
socket and state machine.  Everything the loop owns (the transfer table,
outcome counters, ``done`` futures) is updated back on the loop through
``call_soon_threadsafe``.  The one counter the thread writes itself,
``bytes_sent``, has no other writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import os
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bootproxy.tftp.counters import TftpCounters
from bootproxy.tftp.errors import PacketError
from bootproxy.tftp.packets import ErrorCode, Opcode, encode_error, parse_packet
from bootproxy.tftp.transfer import ReadTransfer

log = logging.getLogger("bootproxy.tftp")

_ACK = Opcode.ACK.value
_MAX_DATAGRAM = 65536
# events taken per epoll_wait: Python allocates an array of this many per call (1,023
# by default), and more ready transfers are simply taken on the next pass
_EVENTS_PER_POLL = 64
_ERROR_5 = encode_error(ErrorCode.UNKNOWN_TID, "unknown transfer id")


@dataclass(eq=False)
class Transfer:
    """One running transfer: its own socket (its TID), the client, the state machine.

    ``done`` resolves on the event loop once the transfer has ended and been counted.
    """

    sock: socket.socket
    peer: tuple[str, int]
    machine: ReadTransfer
    close_file: Callable[[], None]
    done: asyncio.Future[None]
    deadline: float = 0.0
    armed: bool = False  # an entry for this transfer is on the timer heap
    counted: int = 0  # machine.bytes_sent already added to the counters
    closed: bool = field(default=False)


EndFn = Callable[[Transfer], None]
"""Called on the event loop when a transfer has ended (after its socket is closed)."""


class TransferPump:
    """Runs every transfer's I/O and timers in one thread; see the module docstring."""

    def __init__(self, loop: asyncio.AbstractEventLoop, counters: TftpCounters,
                 on_end: EndFn) -> None:
        self._loop = loop
        self._counters = counters
        self._on_end = on_end
        self._epoll = select.epoll()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._epoll.register(self._wake, select.EPOLLIN)
        self._incoming: deque[Transfer] = deque()
        self._by_fd: dict[int, Transfer] = {}
        self._timers: list[tuple[float, int, Transfer]] = []
        self._seq = itertools.count()
        self._stopping = False
        self._now = time.monotonic()
        # one receive buffer for every datagram: recvfrom() would allocate 64 KiB per
        # packet and shrink it again (only the pump thread uses it)
        self._buf = bytearray(_MAX_DATAGRAM)
        self._thread = threading.Thread(target=self._run, name="tftp-pump", daemon=True)
        self._thread.start()

    # -- called on the event loop ------------------------------------------------
    def add(self, transfer: Transfer) -> None:
        """Hand a new transfer to the thread, which sends its first datagrams."""
        self._incoming.append(transfer)
        os.eventfd_write(self._wake, 1)

    async def stop(self) -> None:
        """Abort every running transfer (each is still reported ended) and end the thread."""
        self._stopping = True
        os.eventfd_write(self._wake, 1)
        await asyncio.to_thread(self._thread.join)
        self._epoll.close()
        os.close(self._wake)

    def _loop_call(self, fn: Callable[..., object], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is left to tell
            self._loop.call_soon_threadsafe(fn, *args)

    def _count_error(self, kind: str) -> None:
        self._counters.errors[kind] += 1

    # -- the thread --------------------------------------------------------------
    def _run(self) -> None:
        poll = self._epoll.poll
        by_fd = self._by_fd
        timers = self._timers
        wake = self._wake
        while True:
            timeout = max(0.0, timers[0][0] - time.monotonic()) if timers else -1.0
            events = poll(timeout, _EVENTS_PER_POLL)
            self._now = time.monotonic()
            for fd, _ in events:
                transfer = by_fd.get(fd)
                if transfer is not None:
                    self._readable(transfer)
                elif fd == wake:
                    with contextlib.suppress(BlockingIOError):
                        os.eventfd_read(wake)
                    while self._incoming:
                        self._begin(self._incoming.popleft())
            if self._stopping:
                self._drain()
                for transfer in [*self._incoming, *by_fd.values()]:
                    self._end(transfer)
                self._incoming.clear()
                return
            if timers and timers[0][0] <= self._now:
                self._expire()

    def _drain(self, passes: int = 64) -> None:
        """Before stopping, handle what already came in (a last ACK completes a transfer)."""
        for _ in range(passes):
            ready = [self._by_fd[fd] for fd, _ in self._epoll.poll(0) if fd in self._by_fd]
            if not ready:
                return
            for transfer in ready:
                if not transfer.closed:
                    self._readable(transfer)

    def _begin(self, transfer: Transfer) -> None:
        self._by_fd[transfer.sock.fileno()] = transfer
        self._epoll.register(transfer.sock.fileno(), select.EPOLLIN)
        self._send(transfer, transfer.machine.start())

    def _readable(self, transfer: Transfer) -> None:
        try:
            size, addr = transfer.sock.recvfrom_into(self._buf)
        except OSError as exc:  # BlockingIOError, or an ICMP error queued on the socket
            if not isinstance(exc, BlockingIOError):
                log.debug("transfer to %s: %s", transfer.peer, exc)
            return
        if addr != transfer.peer:
            # TFTP-1: a stranger gets ERROR 5; our transfer carries on.
            self._loop_call(self._count_error, "unknown_tid")
            self._sendto(transfer, _ERROR_5, addr)
            return
        machine = transfer.machine
        before = machine.retries
        buf = self._buf
        if size == 4 and buf[0] == 0 and buf[1] == _ACK:
            out = machine.on_ack(buf[2] << 8 | buf[3])  # the hot path: no parser, no packet
        else:
            try:
                packet = parse_packet(bytes(buf[:size]))
            except PacketError:
                self._loop_call(self._count_error, "malformed")
                return
            out = machine.on_packet(packet)
        if out or machine.finished or machine.retries != before:
            self._send(transfer, out)

    def _sendto(self, transfer: Transfer, datagram: bytes, addr: tuple[str, int]) -> None:
        try:
            transfer.sock.sendto(datagram, addr)
        except OSError as exc:  # a full socket buffer is a lost datagram: the timer resends
            log.debug("transfer to %s: send: %s", transfer.peer, exc)

    def _send(self, transfer: Transfer, datagrams: list[bytes]) -> None:
        machine = transfer.machine
        # Live byte count for /metrics, also during a long transfer; counted before the
        # send so that a client holding the DATA never reads a count without it.
        self._counters.bytes_sent += machine.bytes_sent - transfer.counted
        transfer.counted = machine.bytes_sent
        sock, peer = transfer.sock, transfer.peer
        for datagram in datagrams:
            try:
                sock.sendto(datagram, peer)
            except OSError as exc:
                log.debug("transfer to %s: send: %s", peer, exc)
        if machine.finished:
            self._end(transfer)
            return
        # Progress pushes the deadline out; the heap entry is re-armed only when it
        # fires early, which keeps heap churn off the per-packet path.
        transfer.deadline = self._now + machine.timeout
        if not transfer.armed:
            transfer.armed = True
            heapq.heappush(self._timers, (transfer.deadline, next(self._seq), transfer))
        machine.prefetch()  # while the client works: the next DATA is ready when its ACK comes

    def _expire(self) -> None:
        timers = self._timers
        while timers and timers[0][0] <= self._now:
            _, _, transfer = heapq.heappop(timers)
            transfer.armed = False
            if transfer.closed:
                continue
            if self._now < transfer.deadline:
                transfer.armed = True
                heapq.heappush(timers, (transfer.deadline, next(self._seq), transfer))
                continue
            self._send(transfer, transfer.machine.on_timeout())

    def _end(self, transfer: Transfer) -> None:
        if transfer.closed:
            return
        transfer.closed = True
        fd = transfer.sock.fileno()
        if self._by_fd.pop(fd, None) is not None:
            self._epoll.unregister(fd)
        transfer.sock.close()
        transfer.close_file()
        self._loop_call(self._on_end, transfer)
