"""ProxyDHCP on a namespaced segment: the proxy process in one netns, scapy clients in another.

Checks the wire against CONFORMANCE.md: BIOS, UEFI x64 (offer then 4011 from port
4011), HTTPClient, iPXE, a foreign MAC (silence), a relayed request (reply at
giaddr:67) and the conflict watch. Needs root; everything is torn down in finally.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from bp_sim_lab import (
    CLIENT_IP,
    FOREIGN,
    PROXY_IP,
    PROXY_IP2,
    SERVED,
    UUID97,
    Lab,
    discover,
    only_reply,
    pxe_options,
)

from bootproxy.dhcp.codec import DhcpPacket, MessageType, Opt
from bootproxy.dhcp.options import decode_boot_item, decode_suboptions

pytestmark = [
    pytest.mark.sim,
    pytest.mark.needs_root,
    pytest.mark.needs_binary("ip", how="apt-get install iproute2"),
    pytest.mark.timeout(120),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("bootproxy_dhcp"))
    try:
        lab.build()
        lab.start_proxy()
        yield lab
    finally:
        lab.close()


def check_offer(pkt: DhcpPacket, reply: dict[str, Any], mac: str) -> None:
    assert pkt.message_type == MessageType.OFFER
    assert pkt.mac == mac and pkt.yiaddr == "0.0.0.0"  # OFFER-1/2
    assert pkt.get(Opt.SERVER_ID) == bytes(int(x) for x in PROXY_IP.split("."))  # OFFER-4
    assert pkt.get(Opt.CLIENT_UUID) == bytes.fromhex(UUID97)  # OFFER-5
    assert reply["src"] == [PROXY_IP, 67]  # OFFER-10
    assert reply["dst"] == ["255.255.255.255", 68]
    assert len(bytes.fromhex(reply["payload"])) >= 300  # OFFER-11


def test_bios_offer(lab: Lab) -> None:
    [res] = lab.probe([discover(SERVED["bios"], 0x1001, 0)])
    pkt, reply = only_reply(res)
    check_offer(pkt, reply, SERVED["bios"])
    assert pkt.get(Opt.VENDOR_CLASS) == b"PXEClient"
    assert pkt.file == b"undionly.kpxe" and pkt.siaddr == PROXY_IP
    sub = dict(decode_suboptions(pkt.get(Opt.VENDOR_SPECIFIC) or b"", end_required=True))
    assert sub[6] == b"\x08"


def test_uefi_offer_then_4011_from_4011(lab: Lab) -> None:
    mac = SERVED["uefi"]
    boot_item = [43, "4704" + "00000000" + "ff"]
    offer_res, ack_res = lab.probe(
        [
            discover(mac, 0x2002, 7),
            {
                "kind": "unicast", "mac": mac, "xid": 0x2003, "msg": "request",
                "ciaddr": CLIENT_IP, "src": CLIENT_IP, "sport": 4011,
                "dst": PROXY_IP, "dport": 4011,
                "options": pxe_options(7, extra=[boot_item]),
            },
        ]
    )
    offer, reply = only_reply(offer_res)
    check_offer(offer, reply, mac)
    assert not offer.has(Opt.VENDOR_SPECIFIC) and offer.file == b""
    ack, ack_reply = only_reply(ack_res)
    assert ack.message_type == MessageType.ACK
    assert ack_reply["src"] == [PROXY_IP, 4011]  # ACK4011-1
    assert ack_reply["dst"] == [CLIENT_IP, 4011]
    assert ack.file == b"ipxe.efi" and ack.siaddr == PROXY_IP  # ACK4011-2
    assert ack.yiaddr == "0.0.0.0"  # ACK4011-3
    sub = dict(decode_suboptions(ack.get(Opt.VENDOR_SPECIFIC) or b"", end_required=True))
    assert decode_boot_item(sub[71]).type == 0  # ACK4011-4


def test_http_client(lab: Lab) -> None:
    mac = SERVED["http"]
    [res] = lab.probe([discover(mac, 0x3003, 16, vendor="HTTPClient:Arch:00016:UNDI:003001")])
    pkt, reply = only_reply(res)
    check_offer(pkt, reply, mac)
    assert pkt.get(Opt.VENDOR_CLASS) == b"HTTPClient"
    assert pkt.file == f"http://{PROXY_IP}:8080/ipxe.efi".encode()


def test_ipxe_gets_script_url(lab: Lab) -> None:
    mac = SERVED["ipxe"]
    [res] = lab.probe([discover(mac, 0x4004, 0, extra=[[77, b"iPXE".hex()]])])
    pkt, reply = only_reply(res)
    check_offer(pkt, reply, mac)
    assert pkt.file == f"http://{PROXY_IP}:8080/boot/{mac}.ipxe".encode()


def test_foreign_mac_gets_nothing(lab: Lab) -> None:
    results = lab.probe(
        [
            discover(FOREIGN, 0x5005, 0, wait=2.0, expect_reply=False),
            {
                "kind": "unicast", "mac": FOREIGN, "xid": 0x5006, "msg": "request",
                "ciaddr": CLIENT_IP, "src": CLIENT_IP, "sport": 4011,
                "dst": PROXY_IP, "dport": 4011, "options": pxe_options(7),
                "wait": 2.0, "expect_reply": False,
            },
        ]
    )
    assert [r["replies"] for r in results] == [[], []]  # SILENT-5


def test_relayed_request_answered_at_giaddr(lab: Lab) -> None:
    mac = SERVED["relay"]
    relay82 = "0104" + b"eth7".hex() + "0203" + b"sw1".hex()
    [res] = lab.probe(
        [
            {
                "kind": "unicast", "mac": mac, "xid": 0x6006, "msg": "discover",
                "giaddr": CLIENT_IP, "src": CLIENT_IP, "sport": 67,
                "dst": PROXY_IP, "dport": 67,
                "options": pxe_options(0, extra=[[82, relay82]]),
            }
        ]
    )
    pkt, reply = only_reply(res)
    assert reply["dst"] == [CLIENT_IP, 67]  # RELAY-1
    assert pkt.giaddr == CLIENT_IP and pkt.broadcast
    assert pkt.options[-1] == (Opt.RELAY_AGENT, bytes.fromhex(relay82))  # RELAY-3
    assert pkt.file == b"undionly.kpxe"


def test_conflict_watch_counts_foreign_proxy_offer(lab: Lab) -> None:
    url = f"http://{PROXY_IP}:{lab.ready['metrics_port']}/metrics"
    foreign_offer = {
        "kind": "broadcast", "mac": SERVED["bios"], "xid": 0x7007, "msg": "offer", "op": 2,
        "src": "10.77.0.9", "sport": 67, "dport": 68, "wait": 0.5, "expect_reply": False,
        "options": [[54, "0a4d0009"], [60, b"PXEClient".hex()]],
    }
    deadline = time.monotonic() + 15
    text = ""
    while time.monotonic() < deadline:
        [_, metrics] = lab.probe([foreign_offer, {"kind": "metrics", "url": url}])
        text = metrics["text"]
        if any(
            line.startswith("bootproxy_conflicts_total{") and float(line.rsplit(" ", 1)[1]) > 0
            for line in text.splitlines()
        ):
            return
    raise AssertionError(f"no conflict counted:\n{text}\n{lab.log_tail()}")


def test_second_interface_answers_with_its_own_address(lab: Lab) -> None:
    mac = SERVED["bios"]
    [res] = lab.probe([discover(mac, 0x9009, 0)], iface=lab.if_client2)
    pkt, reply = only_reply(res)
    assert reply["src"] == [PROXY_IP2, 67]
    assert pkt.get(Opt.SERVER_ID) == bytes(int(x) for x in PROXY_IP2.split("."))  # OFFER-4
    assert pkt.siaddr == PROXY_IP2 and pkt.file == b"undionly.kpxe"
