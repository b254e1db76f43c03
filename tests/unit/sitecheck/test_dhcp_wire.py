"""The probe frames site-check sends, and its reply parser on good, odd and hostile frames."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from harness.sitecheck.dhcp_fake import offer_frame, proxy_server, site_server
from harness.sitecheck.dhcp_probe import describe
from harness.sitecheck.dhcp_wire import (
    PXE_VENDOR_CLASS,
    MalformedReply,
    parse_frame,
    plain_discover_frame,
    probe_guid,
    pxe_discover_frame,
)

pytestmark = pytest.mark.unit

MAC = "52:54:00:12:34:56"


def test_plain_discover_is_a_valid_broadcast_without_pxe_options() -> None:
    frame = plain_discover_frame(MAC, 0xCAFE)
    pkt = Ether(frame)
    assert pkt.dst == "ff:ff:ff:ff:ff:ff" and pkt.src == MAC
    assert (pkt[IP].src, pkt[IP].dst, pkt[UDP].sport, pkt[UDP].dport) == (
        "0.0.0.0", "255.255.255.255", 68, 67)
    # checksums as a receiving stack computes them
    ip_sum, udp_sum = pkt[IP].chksum, pkt[UDP].chksum
    del pkt[IP].chksum, pkt[UDP].chksum
    again = Ether(bytes(pkt))
    assert (again[IP].chksum, again[UDP].chksum) == (ip_sum, udp_sum)
    assert len(pkt[UDP].payload) >= 300
    msg = parse_frame(frame)
    assert msg is not None
    assert (msg.op, msg.msg_type, msg.xid, msg.chaddr) == (1, 1, 0xCAFE, MAC)
    assert msg.flags & 0x8000
    assert not ({60, 93, 94, 97, 43} & set(msg.options))


def test_pxe_discover_carries_what_a_uefi_rom_sends() -> None:
    msg = parse_frame(pxe_discover_frame(MAC, 7))
    assert msg is not None
    assert msg.options[60] == PXE_VENDOR_CLASS and len(PXE_VENDOR_CLASS) == 32
    assert struct.unpack("!H", msg.options[93]) == (7,)
    assert len(msg.options[94]) == 3
    assert msg.options[97] == probe_guid(MAC) and len(msg.options[97]) == 17
    assert msg.options[97][0] == 0
    assert {43, 60, 66, 67} <= set(msg.options[55])
    assert probe_guid(MAC) != probe_guid("52:54:00:12:34:57")


def test_reply_built_by_scapy_reads_the_same() -> None:
    frame = bytes(
        Ether(src="02:00:00:00:00:0b", dst="ff:ff:ff:ff:ff:ff")
        / IP(src="10.1.0.9", dst="255.255.255.255") / UDP(sport=67, dport=68)
        / BOOTP(op=2, xid=0x1234, yiaddr="0.0.0.0", siaddr="10.1.0.9", giaddr="10.2.0.1",
                chaddr=bytes.fromhex(MAC.replace(":", "")) + b"\0" * 10,
                file=b"ipxe.efi")
        / DHCP(options=[("message-type", "offer"), ("server_id", "10.1.0.9"),
                        ("vendor_class_id", b"PXEClient"), ("name_server", "10.1.0.53"),
                        "end"]))
    msg = parse_frame(frame)
    assert msg is not None
    assert (msg.xid, msg.chaddr, msg.server, msg.giaddr, msg.boot_file) == (
        0x1234, MAC, "10.1.0.9", "10.2.0.1", "ipxe.efi")
    assert msg.pxeclient and msg.relayed and msg.has_boot_data
    assert msg.ips(6) == ["10.1.0.53"]
    assert "through relay giaddr 10.2.0.1" in describe(msg)


def test_frames_that_are_not_dhcp_are_ignored_not_counted() -> None:
    arp = bytes(Ether() / ARP())
    dns = bytes(Ether() / IP() / UDP(sport=53, dport=5353) / (b"x" * 40))
    assert parse_frame(arp) is None
    assert parse_frame(dns) is None
    assert parse_frame(b"\x00" * 10) is None


@pytest.mark.parametrize("payload,why", [
    (b"\x02" * 100, "shorter"),
    (b"\x02" + b"\x00" * 239 + b"\xff", "magic"),
])
def test_unreadable_dhcp_is_malformed(payload: bytes, why: str) -> None:
    frame = bytes(Ether() / IP(src="10.0.0.1") / UDP(sport=67, dport=68) / payload)
    with pytest.raises(MalformedReply, match=why):
        parse_frame(frame)


def _offers() -> list[bytes]:
    req = parse_frame(pxe_discover_frame(MAC, 99))
    assert req is not None
    frames = site_server("10.9.0.2", "10.9.0.150", pxeclient=True)(req)
    frames += proxy_server("10.9.0.5", file=b"ipxe.efi", giaddr="10.8.0.1")(req)
    frames.append(offer_frame(req, server="10.9.0.6", extra=[(43, b"\x06\x01\x08\x09\x05")]))
    return frames


SAMPLES = _offers()


def _read_everything(frame: bytes) -> None:
    try:
        msg = parse_frame(frame)
    except MalformedReply as exc:
        assert str(exc)
        return
    if msg is None:
        return
    describe(msg)  # every property the evidence reads
    for code in (1, 3, 6, 12, 15, 42, 66, 67):
        msg.ips(code)
        msg.text(code)
    assert isinstance(msg.has_boot_data, bool)


@settings(max_examples=400, deadline=None)
@given(base=st.sampled_from(SAMPLES),
       edits=st.lists(st.tuples(st.integers(0, 700), st.integers(0, 255)), max_size=8),
       cut=st.one_of(st.none(), st.integers(0, 700)))
def test_damaged_replies_never_crash_the_parser(base: bytes, edits: list[tuple[int, int]],
                                                 cut: int | None) -> None:
    data = bytearray(base)
    for pos, value in edits:
        data[pos % len(data)] = value
    if cut is not None:
        data = data[:cut]
    _read_everything(bytes(data))


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=600), sport=st.sampled_from([67, 68]))
def test_random_payloads_on_dhcp_ports_never_crash_the_parser(payload: bytes,
                                                              sport: int) -> None:
    _read_everything(bytes(Ether() / IP(src="10.0.0.7") / UDP(sport=sport, dport=68)
                           / payload))
