#!/usr/bin/env python3
"""A load generator for the PXE boot-server path: DHCPREQUEST with 43.71 to UDP 4011 → ACK.

perfdhcp cannot send a boot-server REQUEST (option 43 sub-option 71) to port
4011, which is what a UEFI PXE ROM does after an offer without a boot file,
so this one does. It is open-loop: request *i* is sent at ``t0 + i/rate``
whatever the answers, like perfdhcp ``-r``, so a slow server shows up as
drops and latency rather than as a slower client. It runs for at most
``--count`` requests and ``--duration`` seconds, then waits ``--drain``
seconds for late answers; anything still unanswered is a drop.

Each request is a UEFI x64 client (option 60 ``PXEClient:Arch:00007``, 93 = 7,
94, 97 UUID, ``ciaddr`` = the sender's address, as after a site DHCP lease)
sent from UDP 4011 (EDK2's habit) or 68, with a MAC taken in turn from
``--macs``. Latency is the time from ``sendto`` to the ACK with the same
``xid`` being handed to the asyncio protocol, so it includes the generator's
own event-loop delay (a fraction of a millisecond on an idle core).

``--probe`` instead sends one relayed DISCOVER (from UDP 67, ``giaddr`` = our
address, like perfdhcp) and prints the boot-item types the server's offer
lists in 43.9, so the caller knows which 43.71 type the server answers.

Prints one JSON object on stdout. Run it inside the load generator's
namespace (``ip netns exec``): it only talks to ``--server``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.errors import BenchError
from bench.stats import percentiles
from harness.macs import MacError, mac_bytes

__all__ = [
    "LoadResult",
    "build_discover",
    "build_request",
    "main",
    "parse_reply",
    "probe_menu",
    "run_load",
]

MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, ACK = 1, 2, 3, 5
VENDOR_CLASS = b"PXEClient:Arch:00007:UNDI:003016"


def _mac_bytes(mac: str) -> bytes:
    try:
        return mac_bytes(mac)
    except MacError as exc:  # the bench's own error, as its callers expect
        raise BenchError(str(exc)) from exc


def _header(op: int, xid: int, mac: bytes, ciaddr: str = "0.0.0.0",
            giaddr: str = "0.0.0.0") -> bytes:
    return (struct.pack("!BBBBIHH", op, 1, 6, 0, xid, 0, 0)
            + socket.inet_aton(ciaddr) + bytes(4) + bytes(4) + socket.inet_aton(giaddr)
            + mac + bytes(10) + bytes(64) + bytes(128) + MAGIC)


def _pxe_options(arch: int, mac: bytes) -> bytes:
    uuid = bytes(10) + mac  # stable per MAC, 16 bytes
    return (bytes((60, len(VENDOR_CLASS))) + VENDOR_CLASS
            + bytes((93, 2)) + struct.pack("!H", arch)
            + bytes((94, 3, 1, 2, 1))
            + bytes((97, 17, 0)) + uuid)


def build_request(mac: str, xid: int, ciaddr: str, item_type: int, arch: int = 7,
                  layer: int = 0) -> bytes:
    """A UEFI PXE boot-server DHCPREQUEST asking for boot item ``item_type`` (43.71)."""
    raw = _mac_bytes(mac)
    item = bytes((71, 4)) + struct.pack("!HH", item_type, layer)
    return (_header(1, xid, raw, ciaddr=ciaddr) + bytes((53, 1, REQUEST))
            + _pxe_options(arch, raw)
            + bytes((43, len(item) + 1)) + item + b"\xff"  # 43 ends with its own END
            + b"\xff")


def build_discover(mac: str, xid: int, giaddr: str, arch: int = 7) -> bytes:
    """A relayed PXE DHCPDISCOVER (``giaddr`` set, as perfdhcp sends them)."""
    raw = _mac_bytes(mac)
    return (_header(1, xid, raw, giaddr=giaddr) + bytes((53, 1, DISCOVER))
            + _pxe_options(arch, raw) + b"\xff")


def _options(packet: bytes) -> dict[int, bytes]:
    opts: dict[int, bytes] = {}
    i = 240
    while i < len(packet):
        code = packet[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(packet):
            break
        length = packet[i + 1]
        opts.setdefault(code, packet[i + 2:i + 2 + length])
        i += 2 + length
    return opts


def parse_reply(packet: bytes) -> tuple[int, int, dict[int, bytes]] | None:
    """``(xid, message type, options)`` of a BOOTREPLY, or ``None`` for anything else."""
    if len(packet) < 241 or packet[0] != 2 or packet[236:240] != MAGIC:
        return None
    opts = _options(packet)
    msg = opts.get(53)
    if not msg:
        return None
    return struct.unpack("!I", packet[4:8])[0], msg[0], opts


def menu_types(vendor43: bytes) -> list[int]:
    """Boot-item types listed in 43.9 (PXE boot menu: type, length, description …)."""
    types: list[int] = []
    i = 0
    while i + 1 < len(vendor43):
        code, length = vendor43[i], vendor43[i + 1]
        value = vendor43[i + 2:i + 2 + length]
        if code == 9:
            j = 0
            while j + 3 <= len(value):
                types.append(struct.unpack("!H", value[j:j + 2])[0])
                j += 3 + value[j + 2]
        if code == 255:
            break
        i += 2 + length
    return types


@dataclass
class LoadResult:
    """What one bounded run measured; ``as_dict`` is the JSON the CLI prints."""

    offered_per_s: float
    sent: int = 0
    received: int = 0
    duplicates: int = 0
    send_errors: int = 0
    send_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def drop_ratio(self) -> float:
        """Requests without an ACK (after the drain), as a fraction of those sent."""
        return 0.0 if self.sent == 0 else (self.sent - self.received) / self.sent

    def as_dict(self) -> dict[str, object]:
        """Counts, rates and latency percentiles (no raw latencies: they can be 100k long)."""
        span = self.send_seconds or 1e-9
        return {
            "offered_per_s": self.offered_per_s,
            "sent": self.sent,
            "received": self.received,
            "duplicates": self.duplicates,
            "send_errors": self.send_errors,
            "sent_per_s": round(self.sent / span, 1),
            "answered_per_s": round(self.received / span, 1),
            "drop_ratio": round(self.drop_ratio, 5),
            "latency_ms": percentiles(self.latencies_ms),
        }


class _Receiver(asyncio.DatagramProtocol):
    """Matches ACKs to outstanding xids and records their latency."""

    def __init__(self, pending: dict[int, int], result: LoadResult) -> None:
        self.pending = pending
        self.result = result
        self.seen: set[int] = set()
        self.all_done = asyncio.Event()
        self.sending = True

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        now = time.perf_counter_ns()
        if len(data) < 241 or data[0] != 2:
            return
        xid = struct.unpack("!I", data[4:8])[0]
        sent_at = self.pending.pop(xid, None)
        if sent_at is None:
            if xid in self.seen:
                self.result.duplicates += 1
            return
        parsed = parse_reply(data)
        if parsed is None or parsed[1] != ACK:
            return
        self.seen.add(xid)
        self.result.received += 1
        self.result.latencies_ms.append((now - sent_at) / 1e6)
        if not self.sending and not self.pending:
            self.all_done.set()

    def error_received(self, exc: Exception) -> None:
        self.result.send_errors += 1


async def run_load(server: str, macs: list[str], *, rate: float, count: int, duration: float,
                   item_type: int, bind: str = "0.0.0.0", source_port: int = 4011,
                   server_port: int = 4011, ciaddr: str | None = None, drain: float = 1.0
                   ) -> LoadResult:
    """Send up to ``count`` boot-server REQUESTs at ``rate``/s for at most ``duration`` s.

    Returns the counts and latencies; never runs longer than ``duration + drain``
    seconds (plus socket set-up).
    """
    if not macs:
        raise BenchError("no MACs given: the generator needs at least one client MAC")
    if rate <= 0 or count <= 0 or duration <= 0:
        raise BenchError("rate, count and duration must all be positive")
    loop = asyncio.get_running_loop()
    result = LoadResult(offered_per_s=rate)
    pending: dict[int, int] = {}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.bind((bind, source_port))
    sock.setblocking(False)
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _Receiver(pending, result), sock=sock)
    addr = ciaddr or (bind if bind != "0.0.0.0" else "0.0.0.0")
    templates = [build_request(m, 0, addr, item_type) for m in macs]
    base_xid = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
    target = (server, server_port)
    try:
        t0 = time.perf_counter()
        deadline = t0 + duration
        while result.sent < count:
            now = time.perf_counter()
            if now >= deadline:
                break
            due = min(count, int((now - t0) * rate) + 1)
            while result.sent < due:
                i = result.sent
                xid = (base_xid + i) & 0xFFFFFFFF
                tmpl = templates[i % len(templates)]
                packet = tmpl[:4] + xid.to_bytes(4, "big") + tmpl[8:]
                pending[xid] = time.perf_counter_ns()
                try:
                    transport.sendto(packet, target)
                except OSError:
                    result.send_errors += 1
                result.sent += 1
            # sleep until the next request is due (at least one loop turn to read answers)
            await asyncio.sleep(max(0.0, min(0.002, t0 + result.sent / rate - time.perf_counter())))
        result.send_seconds = time.perf_counter() - t0
        proto.sending = False
        if pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proto.all_done.wait(), timeout=drain)
    finally:
        transport.close()
    return result


async def probe_menu(server: str, bind: str, mac: str, arch: int = 7, timeout: float = 2.0
                     ) -> dict[str, object]:
    """Send one relayed DISCOVER from UDP 67 and describe the OFFER (43.9 types, file)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((bind, 67))
    sock.setblocking(False)
    xid = int.from_bytes(os.urandom(4), "big")
    try:
        await loop.sock_sendto(sock, build_discover(mac, xid, bind, arch), (server, 67))
        end = loop.time() + timeout
        while True:
            remaining = end - loop.time()
            if remaining <= 0:
                raise BenchError(f"no OFFER from {server} within {timeout} s to a relayed "
                                 f"DISCOVER for {mac}: is the MAC served and the proxy up?")
            data = await asyncio.wait_for(loop.sock_recv(sock, 4096), remaining)
            parsed = parse_reply(data)
            if parsed is None or parsed[0] != xid or parsed[1] != OFFER:
                continue
            opts = parsed[2]
            vendor = opts.get(43, b"")
            return {"has_43": 43 in opts, "menu_types": menu_types(vendor),
                    "file": data[108:236].split(b"\0", 1)[0].decode(errors="replace")}
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    """CLI: a bounded load run (default) or ``--probe``; prints one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True, help="the proxy's address")
    parser.add_argument("--bind", default="0.0.0.0", help="our address (also ciaddr/giaddr)")
    parser.add_argument("--macs", required=True, help="file with one client MAC per line")
    parser.add_argument("--rate", type=float, default=1000, help="requests per second")
    parser.add_argument("--count", type=int, default=5000, help="at most this many requests")
    parser.add_argument("--duration", type=float, default=5, help="at most this many seconds")
    parser.add_argument("--drain", type=float, default=1, help="seconds to wait for late ACKs")
    parser.add_argument("--item-type", type=int, default=0, help="43.71 boot item type")
    parser.add_argument("--source-port", type=int, default=4011, help="4011 (EDK2) or 68")
    parser.add_argument("--probe", action="store_true", help="only report the offer's menu")
    args = parser.parse_args(argv)
    macs = [line.strip() for line in Path(args.macs).read_text().splitlines() if line.strip()]
    try:
        if args.probe:
            out: dict[str, object] = asyncio.run(probe_menu(args.server, args.bind, macs[0]))
        else:
            res = asyncio.run(run_load(args.server, macs, rate=args.rate, count=args.count,
                                       duration=args.duration, item_type=args.item_type,
                                       bind=args.bind, source_port=args.source_port,
                                       drain=args.drain))
            out = res.as_dict()
    except BenchError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
