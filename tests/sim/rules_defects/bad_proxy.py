"""A small ProxyDHCP responder (UDP 67 + 4011) with one switchable defect.

Usage: python bad_proxy.py OWN_IP SERVED_MAC DEFECT
DEFECT is one of: none, yiaddr, no60, foreign, ackport, ackreq, bad43. Prints "ready" once
its sockets are bound. Runs until SIGTERM. Only for the sim rule tests.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0])

from harness.capture.dhcp_codec import parse_dhcp
from harness.capture.synth import dhcp_payload, ip4, pxe43


class Responder(asyncio.DatagramProtocol):
    """Answers PXE DISCOVERs on 67 and boot REQUESTs on 4011."""

    def __init__(self, own: str, served: str, defect: str, port: int) -> None:
        self.own, self.served, self.defect, self.port = own, served, defect, port
        self.transport: asyncio.DatagramTransport | None = None
        self.out: socket.socket | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            q = parse_dhcp(data)
        except ValueError:
            return
        opts = dict(q.options)
        vc = opts.get(60, b"")
        if q.op != 1 or not vc.startswith(b"PXEClient"):
            return
        if q.chaddr != self.served and self.defect != "foreign":
            return
        uuid = opts.get(97)
        reply = [(54, ip4(self.own))]
        if not (self.defect == "no60" and self.port == 67):
            reply.append((60, b"PXEClient"))
        if uuid is not None:
            reply.append((97, uuid))
        assert self.transport is not None
        if self.port == 67 and opts.get(53) == b"\x01":
            reply.insert(0, (53, b"\x02"))
            reply.append((43, b"\x06\x05\x08" if self.defect == "bad43" else pxe43([(6, b"\x08")])))
            yiaddr = "10.77.0.200" if self.defect == "yiaddr" else "0.0.0.0"
            pay = dhcp_payload(
                2,
                q.xid,
                q.chaddr,
                reply,
                yiaddr=yiaddr,
                siaddr=self.own,
                flags=0x8000,
                file=b"undionly.0",
            )
            self.transport.sendto(pay, ("255.255.255.255", 68))
        elif self.port == 67 and opts.get(53) == b"\x03" and self.defect == "ackreq":
            reply.insert(0, (53, b"\x05"))
            pay = dhcp_payload(2, q.xid, q.chaddr, reply, flags=0x8000)
            self.transport.sendto(pay, ("255.255.255.255", 68))
        elif self.port == 4011 and opts.get(53) == b"\x03":
            reply.insert(0, (53, b"\x05"))
            if 43 in opts:
                reply.append((43, opts[43]))
            pay = dhcp_payload(2, q.xid, q.chaddr, reply, siaddr=self.own, file=b"undionly.0")
            if self.defect == "ackport":
                assert self.out is not None
                self.out.sendto(pay, addr)  # from port 67 instead of 4011
            else:
                self.transport.sendto(pay, addr)


async def main() -> None:
    own, served, defect = sys.argv[1], sys.argv[2].lower(), sys.argv[3]
    loop = asyncio.get_running_loop()
    bcast = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bcast.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    bcast.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    bcast.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
    bcast.bind(("0.0.0.0", 67))
    p67 = Responder(own, served, defect, 67)
    await loop.create_datagram_endpoint(lambda: p67, sock=bcast)
    s4011 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s4011.bind((own, 4011))
    p4011 = Responder(own, served, defect, 4011)
    p4011.out = bcast
    await loop.create_datagram_endpoint(lambda: p4011, sock=s4011)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
