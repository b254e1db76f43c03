"""A one-shot PXE DISCOVER from a lab host, for lab-level tests (emulators do the real boots).

Sending and listening are site-check's own (``PacketLink`` and ``run_exchange``): the
same packet socket, kernel DHCP filter and bounded listening window it probes a site with.
"""

from __future__ import annotations

from typing import Any

from harness.lab import Lab
from harness.lab.nsthread import NamespaceWorker
from harness.sitecheck.dhcp_exchange import Probe, run_exchange
from harness.sitecheck.dhcp_link import PacketLink

XID = 0x5EED


def pxe_discover(lab: Lab, host: str, segment: str, *, arch: int = 0,
                 timeout: float = 2.0) -> list[dict[str, Any]]:
    """Broadcast a BIOS/UEFI PXE DISCOVER from ``host`` once and return every reply to it
    seen within ``timeout`` s."""
    from scapy.all import BOOTP, DHCP, IP, UDP, Ether

    info = lab.link(host, segment)
    mac = info.mac
    vendor = f"PXEClient:Arch:{arch:05d}:UNDI:002001".encode()
    frame = (
        Ether(dst="ff:ff:ff:ff:ff:ff", src=mac)
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")) + b"\0" * 10, xid=XID,
                flags=0x8000)
        / DHCP(options=[("message-type", "discover"), ("vendor_class_id", vendor),
                        (93, arch.to_bytes(2, "big")), (94, b"\x01\x02\x01"), "end"])
    )
    probe = Probe(mac, XID, bytes(frame))

    def exchange() -> list[dict[str, Any]]:
        # the packet socket is opened in this (namespace) thread, on the host's device
        with PacketLink(info.host_iface) as link:
            seen = run_exchange(link, [probe], timeout, max_tries=1).replies_to(probe)
        return [{"src": m.src_ip, "yiaddr": m.yiaddr, "giaddr": m.giaddr, "file": m.file,
                 "vendor_class": m.options.get(60), "server_id": m.server_id}
                for m in (s.message for s in seen)]

    with NamespaceWorker(lab.ns(host)) as worker:
        return worker.call(exchange)
