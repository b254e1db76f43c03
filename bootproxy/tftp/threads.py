"""A thread of its own per transfer, blocking on its socket: lockstep at tftpd-hpa's pace.

Why: lockstep TFTP (windowsize 1, what most firmware asks for) is one round
trip per block, so a transfer's speed is the server's time from an ACK to the
next DATA.  The pump (``pump.py``) pays an ``epoll_wait`` and its result list
for every block; a thread that owns one socket just sleeps in ``recv`` and
answers with ``send``: two system calls per block, as tftpd-hpa's process per
transfer makes (bench/results/tftp.json has both runners beside tftpd-hpa).

A thread each does not scale (threads trading the GIL move less than one epoll
loop once a few transfers run at once), so the server gives a thread to one
transfer at a time by default and pumps the rest.

A transfer alone in the server polls for its next ACK before it sleeps
(``TftpConfig.ack_poll_us``, 200 µs).  On this project's 2-core VM a sleeping
thread's wake-up is most of a lockstep round trip: in bench/results/tftp.json a
thread that sleeps in ``recv`` as tftpd-hpa's process does moved 0.85x / 0.99x
tftpd-hpa (blksize 1468 / 512), one that polls with ``MSG_DONTWAIT`` for 200 µs
first 2.03x / 2.17x, in the same runs.  The poll costs CPU while the client is working, so it is
bounded three ways: only when no other transfer runs (a storm's transfers keep the
CPU and the GIL for each other), at most ``ack_poll_us`` per block, and after a
poll that caught nothing (a slow client, a busy host) none for the next
``_POLL_BACKOFF`` blocks.  While it polls, the thread gives the GIL up only inside
each ``recv``, so the event loop may wait for the interpreter's switch interval
(5 ms) to run: the price of the lone-boot path, paid only while one machine boots.

The transfer's timer is the socket's receive timeout (``SO_RCVTIMEO``), set
again only when the time left differs from it: after progress the wait is the
full timeout, as it already is, so the hot path stays at two calls.  ``stop``
wakes each blocked thread by shutting its socket down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable

from bootproxy.tftp.counters import TftpCounters
from bootproxy.tftp.mover import MAX_DATAGRAM, EndFn, Mover, Transfer

log = logging.getLogger("bootproxy.tftp")

# SO_RCVTIMEO of zero means "wait for ever": the shortest wait set is a millisecond
_MIN_WAIT = 0.001
# blocks after a poll that caught nothing before the next poll (see the module docstring)
_POLL_BACKOFF = 64
# a receive timeout this much longer than the time left is kept: the timer fires at
# most this late, and the ACK-to-DATA path never pays a setsockopt for it
_SLACK = 0.01


def _set_wait(sock: socket.socket, seconds: float) -> float:
    """Make ``recv`` on ``sock`` give up after ``seconds``; returns what was set."""
    seconds = max(seconds, _MIN_WAIT)
    whole = int(seconds)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                    struct.pack("ll", whole, int((seconds - whole) * 1_000_000)))
    return seconds


class TransferThreads(Mover):
    """Runs each transfer handed to it on a thread of its own; see the module docstring."""

    def __init__(self, loop: asyncio.AbstractEventLoop, counters: TftpCounters,
                 on_end: EndFn, ack_poll_us: int = 0) -> None:
        super().__init__(loop, counters, on_end)
        self._poll_s = ack_poll_us / 1_000_000
        self._stopping = False
        self._threads: dict[Transfer, threading.Thread] = {}
        self._table = threading.Lock()  # guards _threads (the loop adds, threads remove)

    # -- called on the event loop ------------------------------------------------
    def add(self, transfer: Transfer) -> None:
        """Start a thread for ``transfer``, which sends its first datagrams."""
        thread = threading.Thread(target=self._serve, args=(transfer,), daemon=True,
                                  name=f"tftp-{transfer.peer[0]}:{transfer.peer[1]}")
        with self._table:
            self._threads[transfer] = thread
        thread.start()

    @property
    def running(self) -> int:
        """Transfers on a thread that have not ended yet.  A thread outlives its transfer
        by a moment (it leaves the table after reporting the end), and a transfer that
        came right after must still get a thread: ended ones do not count."""
        with self._table:
            return sum(1 for transfer in self._threads if not transfer.closed)

    async def stop(self) -> None:
        """Abort every running transfer (each is still reported ended) and join the threads."""
        self._stopping = True
        with self._table:
            running = dict(self._threads)
        with self._closing:  # never a socket closed (and its descriptor reused) meanwhile
            for transfer in running:
                if not transfer.closed:
                    # ENOTCONN on an unconnected socket: the sleeper wakes all the same
                    with contextlib.suppress(OSError):
                        transfer.sock.shutdown(socket.SHUT_RDWR)
        for thread in running.values():
            await asyncio.to_thread(thread.join)

    # -- each transfer's thread --------------------------------------------------
    def _serve(self, transfer: Transfer) -> None:
        try:
            self._move(transfer)
        except Exception:  # a bug must not leave the transfer open or its client waiting
            log.exception("transfer to %s failed", transfer.peer)
        finally:
            self.end(transfer)
            with self._table:
                self._threads.pop(transfer, None)

    def _move(self, transfer: Transfer) -> None:
        sock, machine = transfer.sock, transfer.machine
        buf = bytearray(MAX_DATAGRAM)
        recv_into = sock.recv_into
        monotonic = time.monotonic
        counters = self._counters
        poll_s, backoff = self._poll_s, 0
        sock.setblocking(True)
        waits = _set_wait(sock, machine.timeout)
        self.send(transfer, machine.start(), monotonic())
        while not transfer.closed:
            if self._stopping:
                self.take_queued(transfer, buf, monotonic())  # a last ACK completes it
                return
            try:
                size = -1
                if poll_s and counters.active == 1:  # alone in the server
                    if backoff:
                        backoff -= 1
                    else:
                        size = self._poll(recv_into, buf, poll_s)
                        if size < 0:
                            transfer.polls_missed += 1
                            backoff = _POLL_BACKOFF
                        else:
                            transfer.polls_caught += 1
                if size < 0:
                    size = recv_into(buf)
            except BlockingIOError:  # the receive timeout ran out
                size = -1
            except OSError as exc:  # an ICMP error queued on the socket: reported once
                self.refused(transfer, exc, monotonic())
                continue
            now = monotonic()
            if size == 0 and self._stopping:
                continue  # woken by stop() (a shut-down socket reads empty): drain and end
            if size >= 0:
                out = self.feed(transfer, buf, size)
                if out is not None:
                    self.send(transfer, out, now)
                    continue
            left = transfer.deadline - now
            if left <= 0:
                self.timed_out(transfer, buf, now)
                left = transfer.deadline - now
            if not transfer.closed and not left <= waits <= left + _SLACK:
                waits = _set_wait(sock, left)

    def _poll(self, recv_into: Callable[[bytearray, int, int], int], buf: bytearray,
              seconds: float) -> int:
        """Read a datagram into ``buf`` without sleeping, trying for up to ``seconds``;
        its size, or -1 if none came (or ``stop`` began: a shut-down socket reads empty
        only to a ``recv`` that may wait).  An ICMP error on the socket is raised as
        from ``recv``."""
        give_up = time.perf_counter() + seconds
        while True:
            try:
                return recv_into(buf, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                if self._stopping or time.perf_counter() >= give_up:
                    return -1
