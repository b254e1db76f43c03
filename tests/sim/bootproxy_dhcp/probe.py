"""Client-side probe for the ProxyDHCP sim test; runs inside the client namespace.

Usage: probe.py IFACE < actions.json > results.json

Each action sends one packet the way a PXE ROM / iPXE / relay would (scapy
builds it; broadcasts go out at layer 2 from 0.0.0.0, unicast through a UDP
socket bound to the given source port) and sniffs the interface for UDP
replies with the same xid for up to `wait` seconds. Results are the raw UDP
payloads with addresses, decoded by the test with the proxy's own codec and
cross-checked with scapy.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from scapy.all import AsyncSniffer, Ether, sendp  # type: ignore[attr-defined]
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP


def build(action: dict[str, Any]) -> bytes:
    mac = bytes.fromhex(action["mac"].replace(":", ""))
    options: list[Any] = [("message-type", action.get("msg", "discover"))]
    for code, hexval in action.get("options", []):
        options.append((code, bytes.fromhex(hexval)))
    options.append("end")
    pkt = BOOTP(
        op=action.get("op", 1),
        xid=action["xid"],
        flags=action.get("flags", 0),
        ciaddr=action.get("ciaddr", "0.0.0.0"),
        yiaddr=action.get("yiaddr", "0.0.0.0"),
        giaddr=action.get("giaddr", "0.0.0.0"),
        hops=1 if action.get("giaddr") else 0,
        chaddr=mac + b"\x00" * 10,
    ) / DHCP(options=options)
    return bytes(pkt)


def run_action(iface: str, action: dict[str, Any]) -> dict[str, Any]:
    if action["kind"] == "metrics":
        with urllib.request.urlopen(action["url"], timeout=5) as resp:
            return {"text": resp.read().decode()}
    if action["kind"] == "http":
        req = urllib.request.Request(action["url"], method=action.get("method", "GET"))
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return {"status": resp.status, "body": resp.read().decode("latin-1")}
        except urllib.error.HTTPError as exc:
            return {"status": exc.code, "body": exc.read().decode("latin-1")}
    payload = build(action)
    xid = action["xid"]
    replies: list[dict[str, Any]] = []
    got = threading.Event()

    def on_packet(p: Any) -> None:
        if UDP not in p or IP not in p:
            return
        raw = bytes(p[UDP].payload)
        if len(raw) < 240 or raw[0] != 2 or int.from_bytes(raw[4:8], "big") != xid:
            return
        replies.append({
            "src": [p[IP].src, p[UDP].sport],
            "dst": [p[IP].dst, p[UDP].dport],
            "payload": raw.hex(),
        })
        got.set()

    started = threading.Event()
    sniffer = AsyncSniffer(
        iface=iface, filter="udp", prn=on_packet, store=False, started_callback=started.set
    )
    sniffer.start()
    started.wait(5)
    sock = None
    try:
        if action["kind"] == "broadcast":
            frame = (
                Ether(src=action["mac"], dst="ff:ff:ff:ff:ff:ff")
                / IP(src=action.get("src", "0.0.0.0"), dst="255.255.255.255")
                / UDP(sport=action.get("sport", 68), dport=action.get("dport", 67))
                / payload
            )
            sendp(frame, iface=iface, verbose=False)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((action["src"], action["sport"]))
            sock.sendto(payload, (action["dst"], action["dport"]))
        deadline = time.monotonic() + action.get("wait", 3.0)
        if action.get("expect_reply", True):
            got.wait(max(0.0, deadline - time.monotonic()))
        else:
            # Absence is only provable over a window: wait it out.
            while time.monotonic() < deadline and not got.is_set():
                got.wait(deadline - time.monotonic())
    finally:
        sniffer.stop()
        if sock is not None:
            sock.close()
    return {"replies": replies}


def main() -> None:
    iface = sys.argv[1]
    actions = json.load(sys.stdin)
    json.dump([run_action(iface, a) for a in actions], sys.stdout)


if __name__ == "__main__":
    main()
