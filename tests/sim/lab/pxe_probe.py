"""A one-shot PXE DISCOVER from a lab host, for lab-level tests (emulators do the real boots)."""

from __future__ import annotations

import socket
import time
from typing import Any

from harness.lab import Lab
from harness.lab.nsthread import NamespaceWorker


def pxe_discover(lab: Lab, host: str, segment: str, *, arch: int = 0,
                 timeout: float = 2.0) -> list[dict[str, Any]]:
    """Broadcast a BIOS/UEFI PXE DISCOVER from ``host`` and return every reply seen."""
    from scapy.all import BOOTP, DHCP, IP, UDP, Ether

    info = lab.link(host, segment)
    mac = info.mac

    def probe() -> list[dict[str, Any]]:
        # a raw socket opened in this (namespace) thread: scapy's interface table was
        # read in the host namespace and would name the wrong device
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        sock.bind((info.host_iface, 0))
        vendor = f"PXEClient:Arch:{arch:05d}:UNDI:002001".encode()
        frame = (
            Ether(dst="ff:ff:ff:ff:ff:ff", src=mac)
            / IP(src="0.0.0.0", dst="255.255.255.255")
            / UDP(sport=68, dport=67)
            / BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")) + b"\0" * 10, xid=0x5EED,
                    flags=0x8000)
            / DHCP(options=[("message-type", "discover"), ("vendor_class_id", vendor),
                            (93, arch.to_bytes(2, "big")), (94, b"\x01\x02\x01"), "end"])
        )
        sock.send(bytes(frame))
        out = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                raw = sock.recv(65535)
            except TimeoutError:
                break
            reply = Ether(raw)
            if not (reply.haslayer(BOOTP) and reply[BOOTP].op == 2 and reply[BOOTP].xid == 0x5EED):
                continue
            opts = {o[0]: o[1] for o in reply[DHCP].options if isinstance(o, tuple)}
            out.append({"src": reply[IP].src, "yiaddr": reply[BOOTP].yiaddr,
                        "giaddr": reply[BOOTP].giaddr,
                        "file": reply[BOOTP].file.rstrip(b"\0").decode(),
                        "vendor_class": opts.get("vendor_class_id"),
                        "server_id": opts.get("server_id")})
        sock.close()
        return out

    with NamespaceWorker(lab.ns(host)) as worker:
        return worker.call(probe)
