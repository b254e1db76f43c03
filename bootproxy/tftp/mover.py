"""A transfer's datagram work, whoever runs it: a datagram in, the state machine, datagrams out.

Two runners share this: ``pump.py`` (one thread, epoll over many transfers) and
``threads.py`` (a thread of its own per transfer, blocking on its socket).  The
protocol stays in ``transfer.py``; this module only feeds it datagrams and
timeouts and sends what it returns, so both runners answer alike.

Threading contract: the event loop creates a :class:`Transfer` and hands it to a
runner; from then on only that runner's thread touches its socket and state
machine.  Everything the loop owns (the transfer table, outcome counters,
``done`` futures) is updated back on the loop through ``call_soon_threadsafe``.
The one counter runners write themselves, ``bytes_sent``, has several writers
(the pump and each transfer thread) and is added to under a lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from bootproxy.tftp.counters import TftpCounters
from bootproxy.tftp.errors import PacketError
from bootproxy.tftp.packets import Opcode, parse_packet
from bootproxy.tftp.transfer import ReadTransfer

log = logging.getLogger("bootproxy.tftp")

MAX_DATAGRAM = 65536
# datagrams a timed-out transfer reads before it resends (see Mover.timed_out)
_CATCH_UP = 64
_ACK = Opcode.ACK.value
# a read-add-write of counters.bytes_sent from two threads at once would lose one
_BYTES_SENT = threading.Lock()


@dataclass(eq=False)
class Transfer:
    """One running transfer: its own socket (its TID), the client, the state machine.

    ``sock`` is connected to the client: ``recv`` and ``send`` with no address to
    convert or route to look up per datagram.  ``strangers`` is an unconnected socket
    on the same port that gets what anyone else sends there (TFTP-1); the event loop
    owns it.  ``done`` resolves on the event loop once the transfer has ended and
    been counted.
    """

    sock: socket.socket
    peer: tuple[str, int]
    machine: ReadTransfer
    close_file: Callable[[], None]
    done: asyncio.Future[None]
    deadline: float = 0.0  # when the state machine's timer fires (time.monotonic)
    armed: bool = False  # the pump has an entry for this transfer on its timer heap
    counted: int = 0  # machine.bytes_sent already added to the counters
    closed: bool = field(default=False)
    strangers: socket.socket | None = None
    # lockstep ACKs its thread caught while polling, and polls that caught nothing
    # (threads.py); the server adds them to its counters when the transfer ends
    polls_caught: int = 0
    polls_missed: int = 0


EndFn = Callable[[Transfer], None]
"""Called on the event loop when a transfer has ended (after its socket is closed)."""


class Mover:
    """The per-datagram work both runners share; a runner adds how it waits."""

    def __init__(self, loop: asyncio.AbstractEventLoop, counters: TftpCounters,
                 on_end: EndFn) -> None:
        self._loop = loop
        self._counters = counters
        self._on_end = on_end
        # held while a transfer's socket is closed, so that a stop() waking the
        # runner's threads never shuts down a descriptor the kernel has reused
        self._closing = threading.Lock()

    def _loop_call(self, fn: Callable[..., object], *args: object) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is left to tell
            self._loop.call_soon_threadsafe(fn, *args)

    def _count_error(self, kind: str) -> None:
        self._counters.errors[kind] += 1

    def feed(self, transfer: Transfer, buf: bytearray, size: int) -> list[bytes] | None:
        """One datagram from the client in ``buf[:size]``: what to send, or None for nothing.

        The transfer's socket is connected to the client, so only the client's
        datagrams reach it (strangers reach the server's catcher: TFTP-1).  An
        empty list still means "pass it to :meth:`send`": the transfer ended or
        resent nothing, and ``send`` is where that is acted on.
        """
        machine = transfer.machine
        before = machine.retries
        if size == 4 and buf[0] == 0 and buf[1] == _ACK:
            out = machine.on_ack(buf[2] << 8 | buf[3])  # the hot path: no parser, no packet
        else:
            try:
                packet = parse_packet(bytes(buf[:size]))
            except PacketError:
                self._loop_call(self._count_error, "malformed")
                return None
            out = machine.on_packet(packet)
        if out or machine.finished or machine.retries != before:
            return out
        return None  # a duplicate or stale ACK: nothing sent, the timer keeps running

    def send(self, transfer: Transfer, datagrams: list[bytes], now: float) -> None:
        """Send ``datagrams``; end the transfer if it is over, else restart its timer at ``now``."""
        machine = transfer.machine
        # Live byte count for /metrics, also during a long transfer; counted before the
        # send so that a client holding the DATA never reads a count without it.
        with _BYTES_SENT:
            self._counters.bytes_sent += machine.bytes_sent - transfer.counted
        transfer.counted = machine.bytes_sent
        sock = transfer.sock
        for datagram in datagrams:
            try:
                sock.send(datagram)
            except OSError as exc:  # a full socket buffer is a lost datagram: the timer resends
                if exc.errno == errno.ECONNREFUSED:
                    machine.on_peer_gone()
                    break
                log.debug("transfer to %s: send: %s", transfer.peer, exc)
        if machine.finished:
            self.end(transfer)
            return
        transfer.deadline = now + machine.timeout
        self._armed(transfer)
        machine.prefetch()  # while the client works: the next DATA is ready when its ACK comes

    def timed_out(self, transfer: Transfer, buf: bytearray, now: float) -> None:
        """The transfer's timer ran out: resend, unless what already came in answers it.

        A runner learns of its timer and of its socket separately: the pump takes a
        batch of ready sockets and then its timers, and a thread that woke from a
        receive timeout may wait for the GIL.  Under load an ACK or ERROR can sit
        queued meanwhile, and resending then answers what the client has already
        ended (TFTP-4: silence after its ERROR 8) or moved past (TFTP-7).  So the
        queue is read first, without waiting, and the resend goes out only if
        nothing in it moved the transfer on.
        """
        deadline = transfer.deadline
        self.take_queued(transfer, buf, now)
        if transfer.closed or transfer.deadline != deadline:
            return  # ended, or moved on: its timer starts again from the progress
        self.send(transfer, transfer.machine.on_timeout(), now)

    def take_queued(self, transfer: Transfer, buf: bytearray, now: float,
                    limit: int = _CATCH_UP) -> None:
        """Handle up to ``limit`` datagrams already queued on the transfer's socket,
        without waiting: before a resend (``timed_out``), and before a stopping runner
        ends a transfer (a last ACK completes it).  An empty read is a socket shut down
        by ``stop``, or nothing a client sends: either way the end of the queue."""
        for _ in range(limit):
            if transfer.closed:
                return
            try:
                size = transfer.sock.recv_into(buf, 0, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error queued on the socket
                if self.refused(transfer, exc, now):
                    return
                continue
            if size == 0:
                return
            out = self.feed(transfer, buf, size)
            if out is not None:
                self.send(transfer, out, now)

    def refused(self, transfer: Transfer, exc: OSError, now: float) -> bool:
        """An error the transfer's socket reported; True when it ended the transfer.

        The socket is connected, so the kernel hands it the ICMP errors its datagrams
        met: ECONNREFUSED is the client's port unreachable (a machine reset mid-file, a
        client that gave up).  No ACK can come then, and resending until the retries
        ran out only held a transfer slot for nobody.  Anything else is logged.
        """
        if exc.errno != errno.ECONNREFUSED:
            log.debug("transfer to %s: %s", transfer.peer, exc)
            return False
        log.debug("transfer to %s: the client's port is closed", transfer.peer)
        transfer.machine.on_peer_gone()
        self.send(transfer, [], now)  # finished: ends and reports the transfer
        return True

    def _armed(self, transfer: Transfer) -> None:
        """The transfer's deadline moved to ``transfer.deadline`` (the pump keeps a heap)."""

    def _forget(self, transfer: Transfer) -> None:
        """Drop the runner's own record of a transfer, before its socket is closed."""

    def end(self, transfer: Transfer) -> None:
        """Close the transfer's socket and file and report it ended (once)."""
        if transfer.closed:
            return
        self._forget(transfer)
        with self._closing:
            transfer.closed = True
            transfer.sock.close()
        transfer.close_file()
        self._loop_call(self._on_end, transfer)
