"""Golden replies: exact bytes for fixed requests, each decoded independently by scapy.

The .hex files are named after the case; regenerate one by deleting it and running
with FLEXLAB_REGEN_GOLDEN=1, then review the scapy assertions before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP

from bootproxy.dhcp.codec import DhcpPacket, MessageType, Opt, encode
from bootproxy.dhcp.responder import ReceiveContext, Reply, ResponderConfig, decide

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).with_name("golden")
MAC = bytes.fromhex("525400aabbcc")
UUID97 = b"\x00" + bytes(range(1, 17))


def request(arch: int, vendor: bytes, extra: list[tuple[int, bytes]] | None = None,
            msg: int = MessageType.DISCOVER, giaddr: str = "0.0.0.0") -> DhcpPacket:
    return DhcpPacket(
        xid=0x01020304, flags=0x8000, giaddr=giaddr, chaddr=MAC + bytes(10),
        options=[(Opt.MESSAGE_TYPE, bytes((msg,))), (Opt.VENDOR_CLASS, vendor),
                 (Opt.CLIENT_ARCH, arch.to_bytes(2, "big")), (Opt.CLIENT_NDI, b"\x01\x03\x10"),
                 (Opt.CLIENT_UUID, UUID97), *(extra or [])],
    )


CASES = {
    "bios_offer": (request(0, b"PXEClient:Arch:00000:UNDI:002001"), 67),
    "uefi_offer": (request(7, b"PXEClient:Arch:00007:UNDI:003016"), 67),
    "uefi_ack4011": (
        request(7, b"PXEClient:Arch:00007:UNDI:003016",
                [(Opt.VENDOR_SPECIFIC, b"\x47\x04\x00\x00\x00\x00\xff")], MessageType.REQUEST),
        4011,
    ),
    "http_offer": (request(16, b"HTTPClient:Arch:00016:UNDI:003001"), 67),
    "ipxe_relayed_offer": (
        request(0, b"PXEClient:Arch:00000:UNDI:002001",
                [(Opt.USER_CLASS, b"iPXE"), (Opt.RELAY_AGENT, b"\x01\x02ab")],
                giaddr="10.30.0.1"),
        67,
    ),
}


def reply_bytes(name: str) -> bytes:
    req, port = CASES[name]
    ctx = ReceiveContext("10.20.0.2", port, ("10.20.0.50", port), served=True)
    result = decide(req, ctx, ResponderConfig(http_port=8080))
    assert isinstance(result, Reply)
    return encode(result.packet)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_bytes(name: str) -> None:
    path = GOLDEN / f"test_dhcp_golden_{name}.hex"
    raw = reply_bytes(name)
    if os.environ.get("FLEXLAB_REGEN_GOLDEN") and not path.exists():
        path.write_text(raw.hex() + "\n")
    assert raw.hex() == path.read_text().strip(), f"{name} reply changed on the wire"

    sc = BOOTP(raw)
    assert sc.op == 2 and sc.xid == 0x01020304 and bytes(sc.chaddr)[:6] == MAC
    assert sc.yiaddr == "0.0.0.0" and sc.siaddr == "10.20.0.2"
    opts = dict(o for o in sc[DHCP].options if isinstance(o, tuple))
    assert "end" in sc[DHCP].options
    assert opts["server_id"] == "10.20.0.2"
    assert opts["vendor_class_id"] == (b"HTTPClient" if name == "http_offer" else b"PXEClient")
    assert len(raw) >= 300
    for banned in ("requested_addr", "param_req_list", "max_dhcp_size"):
        assert banned not in opts
    if name == "uefi_ack4011":
        assert opts["message-type"] == 5 and sc.file.rstrip(b"\0") == b"ipxe.efi"
    else:
        assert opts["message-type"] == 2
    if name == "ipxe_relayed_offer":
        assert sc.giaddr == "10.30.0.1" and sc.flags == 0x8000
        assert sc.file.rstrip(b"\0") == b"http://10.20.0.2:8080/boot/52:54:00:aa:bb:cc.ipxe"
        last = [o for o in sc[DHCP].options if isinstance(o, tuple)][-1]
        assert last[0] == "relay_agent_information"
