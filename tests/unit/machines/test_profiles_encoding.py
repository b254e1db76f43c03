"""Each profile puts its firmware's options on the wire, in its order; frames check out in scapy."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from harness.capture.dhcp_codec import parse_dhcp
from harness.machines.sim.dhcp import DISCOVER, REQUEST, ClientIdentity, client_message
from harness.machines.sim.frames import BROADCAST_MAC, parse_udp_frame, udp_frame
from harness.machines.sim.profiles import PROFILES, profile
from harness.macs import mac_bytes

pytestmark = pytest.mark.unit

IDENT = ClientIdentity("52:54:00:12:34:56", bytes(range(16)))


def _codes(payload: bytes) -> list[int]:
    return [code for code, _ in parse_dhcp(payload).options]


def _opt(payload: bytes, code: int) -> bytes:
    return dict(parse_dhcp(payload).options)[code]


def test_edk2_discover_reference_bytes() -> None:
    p = client_message(profile("edk2-x64"), IDENT, DISCOVER, 0x01020304)
    # op, htype, hlen, hops, xid, secs, flags (broadcast)
    assert p[:12] == bytes.fromhex("01010600" "01020304" "0000" "8000")
    assert p[28:34] == bytes.fromhex("525400123456")
    assert _codes(p) == [53, 57, 55, 97, 94, 93, 60]
    assert _opt(p, 57) == b"\x05\xc0"  # 1472
    assert _opt(p, 97) == b"\x00" + bytes(range(16))
    assert _opt(p, 94) == b"\x01\x03\x00"
    assert _opt(p, 93) == b"\x00\x07"
    assert _opt(p, 60) == b"PXEClient:Arch:00007:UNDI:003000"
    assert len(_opt(p, 60)) == 32  # CLI-1
    assert len(p) >= 300 and p.rstrip(b"\0").endswith(b"\xff")


def test_ipxe_discover_marks_itself_and_uses_ipxe_order() -> None:
    p = client_message(profile("ipxe-bios"), IDENT, DISCOVER, 7)
    assert _codes(p) == [53, 57, 93, 94, 60, 77, 55, 175, 61, 97]
    assert _opt(p, 77) == b"iPXE"  # raw, not RFC 3004 length-prefixed (CLI-4)
    assert _opt(p, 60) == b"PXEClient:Arch:00000:UNDI:002001"
    assert _opt(p, 61) == b"\x01" + mac_bytes(IDENT.mac)
    assert struct.unpack("!H", p[10:12])[0] == 0  # iPXE leaves the broadcast flag clear


def test_profile_differences() -> None:
    assert 97 not in _codes(client_message(profile("intel-no97"), IDENT, DISCOVER, 1))
    http = client_message(profile("edk2-http"), IDENT, DISCOVER, 1)
    assert _opt(http, 60) == b"HTTPClient:Arch:00016:UNDI:003000"
    hw = client_message(profile("hw-client"), IDENT, DISCOVER, 1)
    assert _opt(hw, 60).startswith(b"HW-Client:Arch:00007")
    efi_ipxe = profile("edk2-x64").ipxe_stage()
    assert efi_ipxe.vendor_class == b"PXEClient:Arch:00007:UNDI:003010"
    assert efi_ipxe.is_ipxe and not profile("edk2-x64").is_ipxe


def test_request_and_boot_server_request() -> None:
    req = client_message(profile("pxe-bios"), IDENT, REQUEST, 9, requested_ip="10.0.0.5",
                         server_id="10.0.0.1")
    assert _codes(req)[:3] == [53, 54, 50]
    assert _opt(req, 50) == bytes([10, 0, 0, 5])
    bs = client_message(profile("edk2-x64"), IDENT, REQUEST, 9, ciaddr="10.0.0.5",
                        boot_item=(0x8000, 0))
    f = parse_dhcp(bs)
    assert f.ciaddr == "10.0.0.5" and f.flags == 0  # a client with an address asks unicast
    assert _opt(bs, 43) == bytes([71, 4, 0x80, 0, 0, 0, 255])


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_frames_are_valid_for_scapy(name: str) -> None:
    payload = client_message(profile(name), IDENT, DISCOVER, 0xABCDEF01)
    frame = udp_frame(mac_bytes(IDENT.mac), BROADCAST_MAC, b"\0" * 4, b"\xff" * 4, 68, 67,
                      payload, ident=77)
    pkt = Ether(frame)
    ip_sum, udp_sum = pkt[IP].chksum, pkt[UDP].chksum
    del pkt[IP].chksum, pkt[UDP].chksum
    rebuilt = Ether(bytes(pkt))
    assert (rebuilt[IP].chksum, rebuilt[UDP].chksum) == (ip_sum, udp_sum)
    assert pkt[BOOTP].xid == 0xABCDEF01
    assert ("message-type", 1) in pkt[DHCP].options
    back = parse_udp_frame(frame)
    assert (back.sport, back.dport, back.payload) == (68, 67, payload)
