"""A small NTP v4 server whose clock is off by a chosen amount, for the site-check time tests.

Real NTP daemons refuse to serve a clock they know is wrong, and shifting the lab
host's clock would shift every test's clock: this server answers like a stratum-1
server whose receive and transmit timestamps are ``now + offset``, so a client on an
honest clock sees exactly ``offset`` (RFC 5905 §8: offset = ((T2-T1) + (T3-T4)) / 2).

It runs as its own process (``python -m harness.components.fake_ntp --offset 3``) in a
lab host, or in a thread (:class:`NtpResponder`) for unit tests on loopback.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import threading
import time
from typing import Self

from harness.components.base import Component
from harness.components.standalone import serve_until_interrupted
from harness.lab.lab import Lab
from harness.lab.waits import UdpBound

NTP_PORT = 123
NTP_EPOCH_DELTA = 2208988800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01
_PACKET = struct.Struct("!BBbb II 4s QQQQ")   # RFC 5905 figure 8, without extensions
_MODE_CLIENT = 3
_MODE_SERVER = 4


def to_ntp(unix: float) -> int:
    """A Unix time as a 64-bit NTP timestamp (32.32 fixed point since 1900)."""
    return int((unix + NTP_EPOCH_DELTA) * (1 << 32)) & ((1 << 64) - 1)


def from_ntp(stamp: int) -> float:
    """A 64-bit NTP timestamp as Unix time (era 0)."""
    return stamp / (1 << 32) - NTP_EPOCH_DELTA


def build_reply(request: bytes, received_unix: float, offset: float,
                clock: float | None = None) -> bytes | None:
    """The server reply to one client ``request``, or None when it is not a client request.

    ``received_unix`` is when the request arrived (honest clock); ``clock`` is the honest
    clock at transmit time (default: now). Both are shifted by ``offset``.
    """
    if len(request) < _PACKET.size:
        return None
    first = request[0]
    version, mode = (first >> 3) & 7, first & 7
    if mode != _MODE_CLIENT or version not in (1, 2, 3, 4):
        return None
    (_, _, poll, _, _, _, _, _, _, _, client_xmit) = _PACKET.unpack_from(request)
    now = time.time() if clock is None else clock
    li_vn_mode = (0 << 6) | (version << 3) | _MODE_SERVER
    return _PACKET.pack(
        li_vn_mode,
        1,                        # stratum 1: a primary reference, as a GPS clock would be
        poll,
        -20,                      # precision ~1 µs
        0,                        # root delay
        1 << 6,                   # root dispersion ~1 ms (16.16 fixed point)
        b"FLAB",                  # reference id: ASCII for stratum 1
        to_ntp(now + offset - 16),  # reference time: "last set 16 s ago"
        client_xmit,              # origin = the client's transmit timestamp, echoed
        to_ntp(received_unix + offset),
        to_ntp(now + offset),
    )


class UdpResponder:
    """Answer each datagram on one UDP socket with :meth:`answer` until :meth:`close`.

    The serving loop a small fake UDP server needs (this NTP server; the site-check
    tests' DNS server subclasses it too): in this thread (:meth:`serve`, the process
    entry) or a daemon thread (:meth:`serve_in_thread`, unit tests on loopback). The
    socket polls a stop flag every 0.2 s so :meth:`close` returns promptly.
    """

    def __init__(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self.received = 0
        self.answered = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def answer(self, request: bytes) -> bytes | None:
        """The reply to one datagram, or None to send nothing."""
        raise NotImplementedError

    def serve(self) -> None:
        """Answer requests until :meth:`close`."""
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            self.received += 1
            reply = self.answer(data)
            if reply is not None:
                self.sock.sendto(reply, peer)
                self.answered += 1

    def serve_in_thread(self) -> Self:
        """Start :meth:`serve` in a daemon thread and return self."""
        self._thread = threading.Thread(target=self.serve, name=type(self).__name__,
                                        daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and close the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.sock.close()


class NtpResponder(UdpResponder):
    """The NTP server on one UDP socket, its clock ``offset`` seconds off."""

    def __init__(self, offset: float, host: str = "0.0.0.0", port: int = NTP_PORT) -> None:
        super().__init__(host, port)
        self.offset = offset

    def answer(self, request: bytes) -> bytes | None:
        """:func:`build_reply`, stamped on arrival by the honest clock."""
        return build_reply(request, time.time(), self.offset)


class FakeNtp(Component):
    """An NTP server off by ``offset_seconds`` in lab host ``host`` (UDP 123)."""

    def __init__(self, lab: Lab, host: str, offset_seconds: float = 0.0, *,
                 port: int = NTP_PORT, name: str | None = None) -> None:
        self.lab = lab
        self.host = host
        self.offset = offset_seconds
        self.port = port
        self.name = name or f"fake-ntp-{host}"

    def start(self) -> None:
        """Launch the server process in the host's namespace."""
        argv = [sys.executable, "-m", "harness.components.fake_ntp",
                "--offset", repr(self.offset), "--port", str(self.port)]
        self.process = self.lab.start_process(self.name, argv, self.host)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Ready when this very process holds its UDP socket."""
        self.wait_for(UdpBound(self.port), timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.components.fake_ntp --offset S [--bind ADDR] [--port N]``."""
    parser = argparse.ArgumentParser(description="an NTP v4 server whose clock is off by S s")
    parser.add_argument("--offset", type=float, default=0.0, help="seconds ahead (+) / behind")
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=NTP_PORT)
    args = parser.parse_args(argv)
    responder = NtpResponder(args.offset, args.bind, args.port)
    print(f"fake-ntp serving on {responder.address[0]}:{responder.address[1]} "
          f"offset {args.offset:+.3f} s", flush=True)
    return serve_until_interrupted(responder.serve, responder.close)


if __name__ == "__main__":
    sys.exit(main())
