"""The thread that moves many transfers' datagrams at once: epoll, recv, state machine, send.

Why a thread, not asyncio: lockstep TFTP (windowsize 1, what most firmware asks
for) is one round trip per block, so its speed is the server's per-packet
latency.  Through asyncio each datagram took the selector, a handle, the
transport and the protocol; a bare epoll loop over the transfer sockets does the
same work with a few calls per packet.  One epoll loop is what a storm needs:
a thousand transfers cost one thread and one wait per batch of ready sockets.
With a few transfers, a thread each (``threads.py``) is faster still; the
server decides which runner a transfer gets.  The datagram work itself is
``mover.py``'s, shared by both.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable

from bootproxy.tftp.counters import TftpCounters
from bootproxy.tftp.mover import MAX_DATAGRAM, EndFn, Mover, Transfer

log = logging.getLogger("bootproxy.tftp")

# events taken per epoll_wait: Python allocates an array of this many per call (1,023
# by default), and more ready transfers are simply taken on the next pass
_EVENTS_PER_POLL = 64


class TransferPump(Mover):
    """Runs every transfer handed to it, I/O and timers, in one thread; see the module docstring."""

    def __init__(self, loop: asyncio.AbstractEventLoop, counters: TftpCounters,
                 on_end: EndFn) -> None:
        super().__init__(loop, counters, on_end)
        self._epoll = select.epoll()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._epoll.register(self._wake, select.EPOLLIN)
        self._incoming: deque[Transfer] = deque()
        self._by_fd: dict[int, Transfer] = {}
        self._timers: list[tuple[float, int, Transfer]] = []
        self._seq = itertools.count()
        self._stopping = False
        self._now = time.monotonic()
        # one receive buffer for every datagram: recv() would allocate 64 KiB per
        # packet and shrink it again (only the pump thread uses it)
        self._buf = bytearray(MAX_DATAGRAM)
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
                    self._guarded(self._readable, transfer)
                elif fd == wake:
                    with contextlib.suppress(BlockingIOError):
                        os.eventfd_read(wake)
                    while self._incoming:
                        self._guarded(self._begin, self._incoming.popleft())
            if self._stopping:
                self._drain()
                for transfer in [*self._incoming, *by_fd.values()]:
                    self.end(transfer)
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
                    self._guarded(self._readable, transfer)

    def _begin(self, transfer: Transfer) -> None:
        self._by_fd[transfer.sock.fileno()] = transfer
        self._epoll.register(transfer.sock.fileno(), select.EPOLLIN)
        self.send(transfer, transfer.machine.start(), self._now)

    def _readable(self, transfer: Transfer) -> None:
        try:
            size = transfer.sock.recv_into(self._buf)
        except OSError as exc:  # BlockingIOError, or an ICMP error queued on the socket
            if not isinstance(exc, BlockingIOError):
                self.refused(transfer, exc, self._now)
            return
        out = self.feed(transfer, self._buf, size)
        if out is not None:
            self.send(transfer, out, self._now)

    def _armed(self, transfer: Transfer) -> None:
        # Progress pushes the deadline out; the heap entry is re-armed only when it
        # fires early, which keeps heap churn off the per-packet path.
        if not transfer.armed:
            transfer.armed = True
            heapq.heappush(self._timers, (transfer.deadline, next(self._seq), transfer))

    def _expire(self) -> None:
        timers = self._timers
        while timers and timers[0][0] <= self._now:
            _, _, transfer = heapq.heappop(timers)
            transfer.armed = False
            if transfer.closed:
                continue
            if self._now < transfer.deadline:
                self._armed(transfer)
                continue
            self._guarded(self._timed_out, transfer)

    def _timed_out(self, transfer: Transfer) -> None:
        self.timed_out(transfer, self._buf, self._now)

    def _guarded(self, step: Callable[[Transfer], None], transfer: Transfer) -> None:
        """Run one transfer's step; a failure (a read error, a bug) ends that transfer
        only, never the thread every other transfer depends on."""
        try:
            step(transfer)
        except Exception:
            log.exception("transfer to %s failed", transfer.peer)
            self.end(transfer)

    def _forget(self, transfer: Transfer) -> None:
        fd = transfer.sock.fileno()
        if self._by_fd.pop(fd, None) is not None:
            self._epoll.unregister(fd)
