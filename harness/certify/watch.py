"""Watching one machine boot through the local Boot Proxy: the phase it has reached.

Read from three views that each see a different part: the capture (DISCOVERs, TFTP and
HTTP from the machine), the Boot Proxy's JSON log (offers and 4011 ACKs it sent) and the
Control Plane (boot data handed out, registration). Used for the live progress line of
``flexlab certify`` and for the "last phase reached" of a machine that never registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.capture.decode import decode_pcap
from harness.capture.errors import CaptureError
from harness.capture.events import Capture
from harness.certify.timings import machine_addresses

PHASES = ("off", "discover", "proxy-offer", "boot-server-ack", "tftp", "http", "booting",
          "registered")
PHASE_TEXT = {
    "off": "waiting for its first DHCPDISCOVER",
    "discover": "DHCPDISCOVER seen",
    "proxy-offer": "the Boot Proxy offered (ProxyDHCP)",
    "boot-server-ack": "the Boot Proxy answered on 4011",
    "tftp": "downloading iPXE over TFTP",
    "http": "downloading the script, kernel and initrd over HTTP",
    "booting": "kernel handed out: node image booting",
    "registered": "the node agent registered",
}


def read_capture(pcap: Path) -> Capture | None:
    """Decode the live pcap; None while it is empty or caught mid-write (next poll retries)."""
    try:
        return decode_pcap(str(pcap), require_dhcp=False)
    except CaptureError:
        return None


@dataclass
class BootView:
    """How far one MAC got, from the capture, the proxy log and the Control Plane."""

    mac: str
    discovers: int = 0
    offers_sent: int = 0
    acks_sent: int = 0
    tftp: bool = False
    http: bool = False
    cp_state: str = "Pending"

    def reached(self) -> list[str]:
        """Every phase with evidence, in boot order (a fast machine skips none of them:
        the capture still shows its DISCOVER when the Control Plane already has its facts)."""
        flags = {"discover": bool(self.discovers), "proxy-offer": bool(self.offers_sent),
                 "boot-server-ack": bool(self.acks_sent), "tftp": self.tftp,
                 "http": self.http,
                 "booting": self.cp_state in ("Booting", "Registered", "Ready", "Rejected"),
                 "registered": self.cp_state in ("Registered", "Ready", "Rejected")}
        return [name for name in PHASES[1:] if flags[name]]

    @property
    def phase(self) -> str:
        """The furthest phase reached."""
        reached = self.reached()
        return reached[-1] if reached else "off"


def boot_view(mac: str, capture: Capture | None, proxy_events: list[dict[str, Any]],
              cp_state: str, http_port: int) -> BootView:
    """Combine the three views for ``mac``."""
    mac = mac.lower()
    view = BootView(mac, cp_state=cp_state)
    for record in proxy_events:
        if record.get("mac") != mac:
            continue
        if record.get("event") == "dhcp_offer":
            view.offers_sent += 1
        elif record.get("event") == "dhcp_ack":
            view.acks_sent += 1
    if capture is not None:
        view.discovers = sum(1 for e in capture.dhcp if e.op == 1 and e.chaddr == mac
                             and e.msg_type == "DISCOVER")
        ips = machine_addresses(capture, mac)
        view.tftp = any(e.src_ip in ips and e.op_name == "RRQ" for e in capture.tftp)
        view.http = any(e.kind == "request" and e.src_ip in ips and e.dport == http_port
                        for e in capture.http)
    return view
