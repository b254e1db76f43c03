"""The server side of one read transfer, as a pure state machine.

No sockets, no clocks: the caller feeds it packets and timeouts and sends the
datagrams it returns.  That keeps every protocol rule (TFTP-2..8) testable
without a network, and keeps the asyncio code in ``server.py`` thin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from bootproxy.tftp.packets import (
    Ack,
    Error,
    ErrorCode,
    Packet,
    Request,
    encode_data,
    encode_error,
    encode_oack,
)

ReadFn = Callable[[int, int], bytes]
"""``read(offset, size) -> bytes``: the file contents, e.g. ``os.pread`` bound to a fd."""


class State(Enum):
    """Where a transfer is: waiting for ACK 0 after an OACK, sending, or finished."""

    WAIT_OACK_ACK = "wait_oack_ack"
    SENDING = "sending"
    DONE = "done"
    FAILED = "failed"


class Outcome(Enum):
    """How a finished transfer ended; the server counts these for /metrics."""

    COMPLETE = "complete"
    FINAL_UNACKED = "final_unacked"  # TFTP-8: last block sent, never ACKed; not an error
    TIMEOUT = "timeout"
    OPTION_PROBE = "option_probe"  # ERROR 8 answering our OACK: EDK2's tsize probe, normal
    CLIENT_ERROR = "client_error"  # the client sent any other ERROR
    ILLEGAL = "illegal"  # the client sent something that is not an ACK
    CLIENT_GONE = "client_gone"  # the client's port refused our datagram (ICMP unreachable)


@dataclass
class ReadTransfer:
    """Serve one file to one client: OACK, windows of DATA, retransmission on timeout.

    Block numbers are tracked as absolute integers internally and put on the
    wire modulo 65536, so files larger than 65535 blocks roll over cleanly.
    """

    read: ReadFn
    size: int
    blksize: int = 512
    windowsize: int = 1
    timeout: float = 1.0
    max_retries: int = 5
    oack: dict[str, str] = field(default_factory=dict)

    state: State = field(init=False)
    outcome: Outcome | None = field(init=False, default=None)
    acked: int = field(init=False, default=0)  # highest block acknowledged
    sent: int = field(init=False, default=0)  # highest block sent
    retries: int = field(init=False, default=0)
    bytes_sent: int = field(init=False, default=0)
    # DATA encoded ahead by prefetch(): block number -> (datagram, payload length)
    _ready: dict[int, tuple[bytes, int]] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.state = State.WAIT_OACK_ACK if self.oack else State.SENDING
        # A file of exactly n*blksize bytes ends with an empty block (TFTP-2).
        self.last_block = self.size // self.blksize + 1

    @property
    def finished(self) -> bool:
        """True once the transfer is over, whatever the outcome."""
        return self.state in (State.DONE, State.FAILED)

    def start(self) -> list[bytes]:
        """The first datagrams to send: the OACK, or the first window of DATA."""
        if self.state is State.WAIT_OACK_ACK:
            return [encode_oack(self.oack)]
        return self._window()

    def prefetch(self) -> None:
        """Encode the DATA the next window will carry, ahead of the ACK that asks for it.

        Lockstep speed is the time from an ACK to the next DATA; the server calls this
        right after sending, while the client is busy, so that reading and encoding are
        off that path. It decides nothing: what is sent, and when, stays with on_ack
        and on_timeout, which use a prepared block only if it is the one they send.
        """
        if self.finished:
            return
        first = self.sent + 1
        last = min(self.sent + self.windowsize, self.last_block)
        for number in range(first, last + 1):
            if number not in self._ready:
                payload = self.read((number - 1) * self.blksize, self.blksize)
                self._ready[number] = (encode_data(number, payload), len(payload))

    def _block(self, number: int) -> bytes:
        ready = self._ready.pop(number, None)
        if ready is None:
            payload = self.read((number - 1) * self.blksize, self.blksize)
            datagram, size = encode_data(number, payload), len(payload)
        else:
            datagram, size = ready
        self.bytes_sent += size
        return datagram

    def _window(self) -> list[bytes]:
        """DATA from the block after the last ACK, windowsize blocks (RFC 7440 §4)."""
        first = self.acked + 1
        if self.windowsize == 1:  # lockstep, what most firmware asks for
            if first > self.sent:
                self.sent = first
            return [self._block(first)]
        last = min(self.acked + self.windowsize, self.last_block)
        self.sent = max(self.sent, last)
        return [self._block(n) for n in range(first, last + 1)]

    def _finish(self, state: State, outcome: Outcome) -> None:
        self.state, self.outcome = state, outcome

    def on_packet(self, packet: Packet) -> list[bytes]:
        """Handle a packet from the client's TID; return datagrams to send."""
        if self.finished:
            return []
        if isinstance(packet, Error):
            # Stop and never answer an ERROR (TFTP-4/6).  ERROR 8 right after our OACK is
            # how EDK2 ends its tsize probe before asking again: not a failure.
            if self.state is State.WAIT_OACK_ACK and packet.code == ErrorCode.OPTION_REFUSED:
                self._finish(State.DONE, Outcome.OPTION_PROBE)
            else:
                self._finish(State.FAILED, Outcome.CLIENT_ERROR)
            return []
        if not isinstance(packet, Ack):
            self._finish(State.FAILED, Outcome.ILLEGAL)
            kind = type(packet).__name__ if not isinstance(packet, Request) else "request"
            return [encode_error(ErrorCode.ILLEGAL_OPERATION, f"expected ACK, got {kind}")]
        return self.on_ack(packet.block)

    def on_ack(self, wire_block: int) -> list[bytes]:
        """Handle an ACK of ``wire_block`` (as on the wire, mod 65536); return datagrams.

        The pump calls this directly for a 4-byte ACK, without building a packet: in
        lockstep the time from an ACK to the next DATA is the transfer's speed.
        """
        state = self.state
        if state is not State.SENDING:
            if state is not State.WAIT_OACK_ACK:
                return []  # finished
            if wire_block != 0:
                return []  # stray ACK; keep waiting for ACK 0, the timer resends the OACK
            self.state = State.SENDING
            self.retries = 0
            return self._window()
        block = self.acked + ((wire_block - self.acked) & 0xFFFF)
        if block > self.sent or block <= self.acked:
            # Duplicate or stale ACK: never answer it (Sorcerer's Apprentice, TFTP-7).
            return []
        self.acked = block
        self.retries = 0
        if block >= self.last_block:
            self._finish(State.DONE, Outcome.COMPLETE)
            return []
        # End of window, or an ACK inside it (the client lost what followed):
        # either way the next window starts right after this ACK.
        return self._window()

    def on_peer_gone(self) -> None:
        """The client's port is closed (the kernel got ICMP port unreachable for our last
        datagram): no ACK can come, so end now instead of resending until the retries run
        out.  Gone after the final block went out is TFTP-8's case, as a timeout there is.
        """
        if self.finished:
            return
        if self.state is State.SENDING and self.sent >= self.last_block:
            self._finish(State.DONE, Outcome.FINAL_UNACKED)
        else:
            self._finish(State.FAILED, Outcome.CLIENT_GONE)

    def on_timeout(self) -> list[bytes]:
        """The timer ran out with no progress: resend, or give up after max_retries."""
        if self.finished:
            return []
        self.retries += 1
        if self.retries > self.max_retries:
            if self.state is State.SENDING and self.sent >= self.last_block:
                self._finish(State.DONE, Outcome.FINAL_UNACKED)
            else:
                self._finish(State.FAILED, Outcome.TIMEOUT)
            return []
        if self.state is State.WAIT_OACK_ACK:
            return [encode_oack(self.oack)]
        return self._window()
