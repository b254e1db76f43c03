"""Seconds per boot phase, read off the certification capture.

Phases (each from its first to its last packet; absent phases are ``null``):

- ``dhcp``: first DISCOVER → the site DHCP server's ACK with an address; when that ACK is
  unicast to the machine (a switch then never shows it to this port) the phase ends at the
  machine's broadcast REQUEST for its lease instead, and ``notes`` says so;
- ``proxydhcp``: first DISCOVER → the Boot Proxy's offer, and on to its 4011 ACK when
  the ROM asks there;
- ``tftp``: first read request → last TFTP packet (the iPXE binary; empty for a NIC with
  an iPXE ROM, which fetches everything over HTTP);
- ``http``: first request to the Boot Proxy's HTTP server → its last answer (script,
  kernel, initrd);
- ``kernel_to_register``: that last answer → the node agent's ``POST /nodes/register``;
- ``total``: first DISCOVER → register.

The split follows bench/vmboot.py's ``phase_split`` (the same marks: first DISCOVER,
TFTP start/end, last proxy HTTP answer, first Control Plane call), re-done here because
certification must not depend on the benchmark scripts, which are not installed.
"""

from __future__ import annotations

from typing import Any

from harness.capture.events import Capture

REGISTER_PATH = "/api/v1/nodes/register"


def machine_addresses(capture: Capture, mac: str) -> set[str]:
    """Addresses the machine used: leases offered to it and sources of its own frames."""
    mac = mac.lower()
    out = {e.yiaddr for e in capture.dhcp
           if e.op == 2 and e.chaddr == mac and e.yiaddr != "0.0.0.0"}
    # a relay forwards the machine's REQUEST to every helper: option 50 names its lease
    out |= {e.requested_ip for e in capture.dhcp
            if e.op == 1 and e.chaddr == mac and e.requested_ip}
    out |= {e.ciaddr for e in capture.dhcp
            if e.op == 1 and e.chaddr == mac and e.ciaddr != "0.0.0.0"}
    for events in (capture.tftp, capture.http):
        out |= {e.src_ip for e in events if e.src_mac == mac and e.src_ip != "0.0.0.0"}
    return out


def _span(start: float | None, end: float | None, t0: float) -> dict[str, float] | None:
    if start is None or end is None or end < start:
        return None
    return {"start": round(start - t0, 3), "end": round(end - t0, 3),
            "seconds": round(end - start, 3)}


def phase_times(capture: Capture, mac: str, *, proxy_ip: str, http_port: int,
                cp_port: int) -> dict[str, Any]:
    """Per-phase spans relative to the first DISCOVER (see the module doc)."""
    mac = mac.lower()
    discs = [e for e in capture.dhcp if e.op == 1 and e.chaddr == mac
             and e.msg_type == "DISCOVER"]
    if not discs:
        return {"first_discover": None, "phases": {}, "note": f"no DISCOVER from {mac}"}
    t0 = discs[0].time
    replies = [e for e in capture.dhcp if e.op == 2 and e.chaddr == mac]
    lease_ack = next((e.time for e in replies if e.msg_type == "ACK"
                      and e.yiaddr != "0.0.0.0" and e.sport == 67), None)
    proxy_offer = next((e.time for e in replies if e.msg_type == "OFFER"
                        and e.yiaddr == "0.0.0.0"
                        and proxy_ip in (e.server_id, e.src_ip)), None)
    notes: list[str] = []
    if lease_ack is None:
        lease_ack = next((e.time for e in capture.dhcp if e.op == 1 and e.chaddr == mac
                          and e.msg_type == "REQUEST" and e.dport == 67
                          and e.server_id not in (None, proxy_ip)), None)
        if lease_ack is not None:
            notes.append("dhcp ends at the machine's REQUEST: the site server's ACK was "
                         "unicast and did not pass this port")
    ack4011 = next((e.time for e in replies if e.sport == 4011 and e.msg_type == "ACK"), None)
    ips = machine_addresses(capture, mac)
    tftp = sorted(e.time for e in capture.tftp if e.src_ip in ips or e.dst_ip in ips)
    asks = sorted(e.time for e in capture.http if e.kind == "request"
                  and e.src_ip in ips and e.dport == http_port)
    answers = sorted(e.time for e in capture.http if e.kind == "response"
                     and e.dst_ip in ips and e.sport == http_port)
    register = next((e.time for e in capture.http if e.kind == "request"
                     and e.src_ip in ips and e.dport == cp_port
                     and (e.path or "").startswith(REGISTER_PATH)), None)
    phases = {
        "dhcp": _span(t0, lease_ack, t0),
        "proxydhcp": _span(t0, ack4011 or proxy_offer, t0),
        "tftp": _span(tftp[0], tftp[-1], t0) if tftp else None,
        "http": _span(asks[0], answers[-1], t0) if asks and answers else None,
        "kernel_to_register": _span(answers[-1] if answers else None, register, t0),
        "total": _span(t0, register, t0),
    }
    return {"first_discover": t0, "discovers": len(discs), "machine_ips": sorted(ips),
            "phases": phases, "notes": notes}
