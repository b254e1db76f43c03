"""The asyncio TFTP server: a listening socket for requests, one socket per transfer.

Protocol decisions live in ``transfer.py`` (state machine), ``options.py``
(negotiation) and ``paths.py`` (confinement).  This module answers requests on
the event loop; the transfers' datagrams and timers run on a thread of their own
(``threads.py``) for up to ``dedicated_threads`` running transfers at a time, and
in ``pump.py``'s one epoll thread for the rest.
Read-only: WRQ gets ERROR 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bootproxy.tftp.counters import TftpCounters
from bootproxy.tftp.errors import PacketError, PathError, TftpError
from bootproxy.tftp.mover import MAX_DATAGRAM, Transfer
from bootproxy.tftp.options import Limits, negotiate
from bootproxy.tftp.packets import ErrorCode, Opcode, Request, encode_error, parse_packet
from bootproxy.tftp.paths import resolve_in_root
from bootproxy.tftp.pump import TransferPump
from bootproxy.tftp.threads import TransferThreads
from bootproxy.tftp.transfer import Outcome, ReadTransfer

log = logging.getLogger("bootproxy.tftp")

AllowFn = Callable[[str], bool]
"""``allow(client_ip) -> bool``: False means the client gets no answer at all (SILENT-5)."""

_PATH_ERROR_KIND = {1: "file_not_found", 2: "access_violation"}
_NETASCII_MAX = 32 * 1024 * 1024


# a poll longer than a second is a busy wait, not a shortcut past a wake-up
MAX_ACK_POLL_US = 1_000_000


@dataclass(frozen=True)
class TftpConfig:
    """How the server listens and what it allows.

    ``host``/``port`` is the request socket; transfers bind ``host`` on an
    ephemeral port (their TID).  ``max_transfers`` caps concurrent transfers;
    requests over the cap are dropped silently so the client retries later
    rather than aborting its boot on an ERROR.
    """

    root: Path
    host: str = "0.0.0.0"
    port: int = 69
    limits: Limits = field(default_factory=Limits)
    max_retries: int = 5
    # a 1,000-machine storm held 256 slots with slow ipxe.efi transfers and lost 27% of
    # its machines (each transfer costs one fd and one socket; main() raises RLIMIT_NOFILE)
    max_transfers: int = 1024
    # running transfers that get a thread of their own: the fast lockstep path for a
    # machine booting alone (0.97x tftpd-hpa against the pump's 0.86x).  Threads do not
    # scale: 16 clients at once moved 56 MB/s on threads alone, 77 on the pump alone,
    # and 67 with this one thread beside the pump, 0.92x the pump run by run: the price
    # of the lone-boot path in a burst (bench/results/tftp.json)
    dedicated_threads: int = 1
    # a transfer alone in the server polls this long for its next ACK before sleeping
    # (threads.py: lockstep about 2x tftpd-hpa's pace here, not 0.85-0.99x); 0: never
    ack_poll_us: int = 200

    def __post_init__(self) -> None:
        if not 0 <= self.ack_poll_us <= MAX_ACK_POLL_US:
            raise ValueError(f"ack_poll_us must be 0..{MAX_ACK_POLL_US} (microseconds), "
                             f"not {self.ack_poll_us}")


def to_netascii(data: bytes) -> bytes:
    """Convert to netascii (RFC 764): LF -> CR LF, bare CR -> CR NUL."""
    return data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


_ERROR_5 = encode_error(ErrorCode.UNKNOWN_TID, "unknown transfer id")
# client endpoints whose last transfer port is remembered (see _transfer_sockets)
_LAST_TIDS = 8192


def _transfer_sockets(host: str, peer: tuple[str, int],
                      avoid: int | None = None) -> tuple[socket.socket, socket.socket]:
    """One transfer's TID: a new port of ``host``, as two non-blocking UDP sockets.

    ``avoid`` is the port ``peer``'s previous transfer had: the kernel may pick a port
    just freed again, and a client that asks again from the same port after ending a
    transfer (EDK2's size probe, ERROR 8) rightly drops what comes from the TID it
    ended, so it waited out its timeout (seen in a boot storm). RFC 1350 §4 asks that
    the same TID not come twice in immediate succession.

    The first is connected to ``peer``, so the per-block path is ``recv``/``send``
    with no address to convert or route to look up.  A connected socket only ever
    sees its peer; the second, unconnected, on the same port, gets what anyone else
    sends there, so a stranger still gets ERROR 5 from the transfer's port (TFTP-1):
    the kernel delivers each datagram to the socket that matches it best.  The port
    is picked without SO_REUSEADDR, so it is one no other socket holds, and
    SO_REUSEADDR is set after, only to let the second socket share it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    strangers = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, 0))
        port = sock.getsockname()[1]
        if port == avoid:
            # hold that port while the kernel picks another, then let it go
            held, sock = sock, socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.bind((host, 0))
                port = sock.getsockname()[1]
            finally:
                held.close()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.connect(peer)
        strangers.setblocking(False)
        strangers.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        strangers.bind((host, port))
    except OSError:
        sock.close()
        strangers.close()
        raise
    return sock, strangers


class _ReadAhead:
    """``read(offset, count)`` over a file descriptor, one ``pread`` per 64 KiB, not per block.

    Blocks are read in order, so most reads are slices of the last chunk; a
    retransmission behind the chunk just reads again.
    """

    CHUNK = 64 * 1024

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.start = 0
        self.buf = b""

    def read(self, offset: int, count: int) -> bytes:
        """``count`` bytes at ``offset`` (fewer at the end of the file)."""
        start = offset - self.start
        if start < 0 or start + count > len(self.buf):
            self.buf = os.pread(self.fd, max(count, self.CHUNK), offset)
            self.start, start = offset, 0
        return self.buf[start:start + count]


class _ListenProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: TftpServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._on_request(data, (addr[0], addr[1]))


class TftpServer:
    """Read-only TFTP server for one boot root.

    Use ``await start()`` / ``await stop()`` (or ``async with``).  ``allow`` is
    the MAC-filter hook; ``counters`` is live and safe to read at any time.
    """

    def __init__(self, config: TftpConfig, allow: AllowFn | None = None) -> None:
        self.config = config
        self.allow: AllowFn = allow or (lambda _ip: True)
        self.counters = TftpCounters()
        self._listen: asyncio.DatagramTransport | None = None
        self._pump: TransferPump | None = None
        self._threads: TransferThreads | None = None
        self._transfers: dict[tuple[str, int], Transfer] = {}
        # each client endpoint's last transfer port, not to be handed to it twice running
        self._last_tid: OrderedDict[tuple[str, int], int] = OrderedDict()

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) actually bound; port is resolved when 0 was asked for."""
        if self._listen is None:
            raise TftpError("TFTP server is not started; call await start() first")
        host, port = self._listen.get_extra_info("sockname")[:2]
        return host, port

    async def start(self) -> None:
        """Bind the request socket.  Raises OSError if the port is taken."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _ListenProtocol(self), local_addr=(self.config.host, self.config.port),
            family=socket.AF_INET)
        self._listen = transport
        self._pump = TransferPump(loop, self.counters, self._transfer_ended)
        self._threads = TransferThreads(loop, self.counters, self._transfer_ended,
                                        ack_poll_us=self.config.ack_poll_us)
        log.info("tftp listening on %s:%d root=%s", *self.address, self.config.root)

    async def stop(self) -> None:
        """Close the request socket and abort running transfers."""
        if self._listen is not None:
            self._listen.close()
            self._listen = None
        if self._pump is not None:
            await self._pump.stop()
            self._pump = None
        if self._threads is not None:
            await self._threads.stop()
            self._threads = None
        for transfer in list(self._transfers.values()):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(transfer.done), 1.0)

    async def __aenter__(self) -> TftpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no transfer is running (used by tests and graceful shutdown)."""
        async with asyncio.timeout(timeout):
            while self._transfers:
                await asyncio.wait([asyncio.shield(p.done) for p in self._transfers.values()])

    def _reply_error(self, addr: tuple[str, int], code: int, message: str, kind: str) -> None:
        """Send an ERROR from the listening socket (no transfer exists yet)."""
        self.counters.errors[kind] += 1
        if self._listen is not None:
            self._listen.sendto(encode_error(code, message), addr)

    def _on_request(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.allow(addr[0]):
            self.counters.errors["refused_client"] += 1
            return  # SILENT-5: not one byte to a client we do not serve
        try:
            packet = parse_packet(data)
        except PacketError as exc:
            self._reply_error(addr, ErrorCode.ILLEGAL_OPERATION, str(exc), "malformed")
            return
        if not isinstance(packet, Request):
            return  # stray DATA/ACK to port 69: nothing to answer
        if packet.opcode is Opcode.WRQ:
            self._reply_error(addr, ErrorCode.ACCESS_VIOLATION, "read-only server",
                              "access_violation")
            return
        if packet.mode not in ("octet", "netascii"):
            self._reply_error(addr, ErrorCode.ILLEGAL_OPERATION,
                              f"mode {packet.mode!r} not supported", "illegal_operation")
            return
        if addr in self._transfers:
            # A retransmitted RRQ (our OACK or DATA 1 was lost): the running transfer's
            # timer already resends, so a second transfer would only duplicate traffic.
            self.counters.errors["duplicate_request"] += 1
            return
        if len(self._transfers) >= self.config.max_transfers:
            self.counters.errors["busy"] += 1
            return
        try:
            path = resolve_in_root(self.config.root, packet.filename)
            fd = os.open(path, os.O_RDONLY)
        except PathError as exc:
            self._reply_error(addr, exc.code, str(exc), _PATH_ERROR_KIND[exc.code])
            return
        except OSError as exc:
            self._reply_error(addr, ErrorCode.ACCESS_VIOLATION, f"cannot open: {exc.strerror}",
                              "access_violation")
            return
        try:
            if packet.mode == "netascii":
                size = os.fstat(fd).st_size
                if size > _NETASCII_MAX:
                    raise OSError("file too large for netascii mode; use octet")
                content = to_netascii(os.pread(fd, size, 0))
                os.close(fd)
                fd = -1
                size = len(content)

                def read(offset: int, count: int) -> bytes:
                    return content[offset:offset + count]
            else:
                size = os.fstat(fd).st_size
                read = _ReadAhead(fd).read
        except OSError as exc:
            if fd >= 0:
                os.close(fd)
            self._reply_error(addr, ErrorCode.ACCESS_VIOLATION, str(exc), "access_violation")
            return
        agreed = negotiate(packet.options, size, self.config.limits)
        machine = ReadTransfer(read=read, size=size, blksize=agreed.blksize,
                               windowsize=agreed.windowsize, timeout=agreed.timeout,
                               max_retries=self.config.max_retries, oack=agreed.oack)
        log.info("tftp rrq %s from %s:%d options=%s", packet.filename, *addr, agreed.oack)
        self.counters.transfers_started += 1
        self.counters.active += 1

        def close_file() -> None:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)

        loop = asyncio.get_running_loop()
        try:
            sock, strangers = _transfer_sockets(self.config.host, addr,
                                                avoid=self._last_tid.get(addr))
        except OSError as exc:
            log.warning("tftp: cannot open a transfer socket: %s", exc)
            close_file()
            self._count_end(machine)
            return
        self._remember_tid(addr, sock.getsockname()[1])
        transfer = Transfer(sock, addr, machine, close_file, loop.create_future(),
                            strangers=strangers)
        loop.add_reader(strangers.fileno(), self._on_stranger, strangers)
        self._transfers[addr] = transfer
        assert self._pump is not None and self._threads is not None
        if self._threads.running < self.config.dedicated_threads:
            self._threads.add(transfer)
        else:
            self._pump.add(transfer)

    def _on_stranger(self, strangers: socket.socket) -> None:
        """Someone other than the client wrote to a transfer's port: ERROR 5, and the
        transfer carries on (TFTP-1)."""
        for _ in range(16):  # what is queued now; the loop calls again if more come
            try:
                _, addr = strangers.recvfrom(MAX_DATAGRAM)
            except OSError:  # BlockingIOError: drained (or an ICMP error, reported once)
                return
            self.counters.errors["unknown_tid"] += 1
            with contextlib.suppress(OSError):
                strangers.sendto(_ERROR_5, addr)

    def _transfer_ended(self, transfer: Transfer) -> None:
        """A runner closed a transfer: count it, forget it, wake whoever waits on it."""
        if transfer.strangers is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop has no readers left
                asyncio.get_running_loop().remove_reader(transfer.strangers.fileno())
            transfer.strangers.close()
        self.counters.acks_polled += transfer.polls_caught
        self.counters.ack_polls_missed += transfer.polls_missed
        self._count_end(transfer.machine)
        if self._transfers.get(transfer.peer) is transfer:
            del self._transfers[transfer.peer]
        if not transfer.done.done():
            transfer.done.set_result(None)

    def _remember_tid(self, peer: tuple[str, int], port: int) -> None:
        """Keep ``peer``'s transfer port for its next request; the oldest of more than
        `_LAST_TIDS` endpoints are forgotten (a storm's clients, not every one ever)."""
        self._last_tid[peer] = port
        self._last_tid.move_to_end(peer)
        if len(self._last_tid) > _LAST_TIDS:
            self._last_tid.popitem(last=False)

    def _count_end(self, machine: ReadTransfer) -> None:
        self.counters.active -= 1
        if machine.outcome in (Outcome.COMPLETE, Outcome.FINAL_UNACKED):
            self.counters.transfers_completed += 1
        elif machine.outcome is Outcome.OPTION_PROBE:
            self.counters.option_probes += 1
        else:
            self.counters.transfers_failed += 1
            kind = {Outcome.TIMEOUT: "timeout", Outcome.CLIENT_ERROR: "client_error",
                    Outcome.ILLEGAL: "illegal_operation",
                    Outcome.CLIENT_GONE: "client_gone"}.get(machine.outcome, "aborted") \
                if machine.outcome else "aborted"
            self.counters.errors[kind] += 1
