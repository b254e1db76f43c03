"""Codec tests: round trips, golden bytes cross-checked with scapy, overload, and fuzzing."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP

from bootproxy.dhcp.codec import (
    MAGIC_COOKIE,
    MAX_PACKET_SIZE,
    CodecError,
    DhcpPacket,
    MessageType,
    Opt,
    encode,
    parse,
)

pytestmark = pytest.mark.unit

MAC = bytes.fromhex("525400123456")


def discover() -> DhcpPacket:
    return DhcpPacket(
        xid=0xDEADBEEF,
        flags=0x8000,
        chaddr=MAC + b"\x00" * 10,
        options=[
            (Opt.MESSAGE_TYPE, bytes((MessageType.DISCOVER,))),
            (Opt.VENDOR_CLASS, b"PXEClient:Arch:00000:UNDI:002001"),
            (Opt.CLIENT_ARCH, b"\x00\x00"),
            (Opt.CLIENT_NDI, b"\x01\x02\x01"),
            (Opt.CLIENT_UUID, b"\x00" + bytes(range(16))),
        ],
    )


def test_round_trip_keeps_every_field() -> None:
    pkt = discover()
    pkt.sname = b"srv"
    pkt.file = b"undionly.kpxe"
    pkt.giaddr = "10.1.2.3"
    assert parse(encode(pkt)) == pkt


def test_encode_pads_to_300_and_ends_with_end() -> None:
    raw = encode(discover())
    assert len(raw) >= 300
    assert len(encode(DhcpPacket())) == 300
    assert raw[236:240] == MAGIC_COOKIE
    body = raw[240:].rstrip(b"\x00")
    assert body[-1] == Opt.END


def test_golden_bytes_agree_with_scapy() -> None:
    raw = encode(discover())
    sc = BOOTP(raw)
    assert sc.op == 1 and sc.xid == 0xDEADBEEF and sc.flags == 0x8000
    assert bytes(sc.chaddr)[:6] == MAC
    opts = {o[0]: o[1] for o in sc[DHCP].options if isinstance(o, tuple)}
    assert opts["message-type"] == 1
    assert opts["vendor_class_id"] == b"PXEClient:Arch:00000:UNDI:002001"
    assert "end" in sc[DHCP].options


def test_parses_scapy_built_packet() -> None:
    sc = BOOTP(op=2, xid=7, yiaddr="0.0.0.0", siaddr="10.0.0.1", chaddr=MAC, file=b"ipxe.efi")
    sc = sc / DHCP(options=[("message-type", "offer"), ("server_id", "10.0.0.1"), "end"])
    pkt = parse(bytes(sc))
    assert pkt.op == 2 and pkt.xid == 7 and pkt.siaddr == "10.0.0.1"
    assert pkt.file == b"ipxe.efi"
    assert pkt.message_type == MessageType.OFFER
    assert pkt.get(Opt.SERVER_ID) == bytes([10, 0, 0, 1])
    assert pkt.mac == "52:54:00:12:34:56"


def test_long_option_is_split_and_joined() -> None:
    pkt = discover()
    pkt.options.append((Opt.VENDOR_SPECIFIC, bytes(300)))
    back = parse(encode(pkt))
    assert back.get(Opt.VENDOR_SPECIFIC) == bytes(300)
    assert [len(v) for c, v in back.options if c == Opt.VENDOR_SPECIFIC] == [255, 45]


def _raw_with(options: bytes, file: bytes = b"", sname: bytes = b"") -> bytes:
    head = struct.pack("!BBBBIHH", 1, 1, 6, 0, 1, 0, 0) + bytes(16) + MAC.ljust(16, b"\0")
    return head + sname.ljust(64, b"\0") + file.ljust(128, b"\0") + MAGIC_COOKIE + options


def test_overload_reads_file_then_sname() -> None:
    raw = _raw_with(
        b"\x35\x01\x01\x34\x01\x03\xff",
        file=b"\x0c\x03abc\xff",
        sname=b"\x3c\x09PXEClient\xff",
    )
    pkt = parse(raw)
    assert pkt.overload == 3
    assert pkt.options == [(53, b"\x01"), (12, b"abc"), (60, b"PXEClient")]
    assert pkt.file == b"" and pkt.sname == b""


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x01" * 239,
        _raw_with(b"\x35\x01\x01"),  # no END
        _raw_with(b"\x35\x05\x01\xff"),  # overrun
        _raw_with(b"\x35"),  # no length
        _raw_with(b"\x34\x01\x01\xff", file=b"\x34\x01\x01\xff"),  # overload loop
        _raw_with(b"\x34\x01\x09\xff"),  # bad overload value
        _raw_with(b"\x34\x01\x01\xff", file=b"\x0c\x03abc"),  # overloaded file without END
        _raw_with(b"\xff\x01"),  # garbage after END
        _raw_with(b"\xff").replace(MAGIC_COOKIE, b"\x00\x00\x00\x00"),
        b"\x05" + _raw_with(b"\xff")[1:],  # bad op
        _raw_with(b"\xff") + b"\x00" * (MAX_PACKET_SIZE),  # oversized
    ],
)
def test_malformed_raises_codec_error(raw: bytes) -> None:
    with pytest.raises(CodecError):
        parse(raw)


def test_encode_refuses_bad_fields() -> None:
    with pytest.raises(CodecError):
        encode(DhcpPacket(file=b"x" * 128))
    with pytest.raises(CodecError):
        encode(DhcpPacket(ciaddr="300.1.1.1"))
    with pytest.raises(CodecError):
        encode(DhcpPacket(options=[(Opt.OVERLOAD, b"\x01")]))


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=600))
def test_fuzz_raw_bytes_parse_or_codec_error(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        parse(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=400))
def test_fuzz_option_area_parse_or_codec_error(tail: bytes) -> None:
    try:
        pkt = parse(_raw_with(tail))
    except CodecError:
        return
    # Whatever parses must re-encode and parse to the same packet.
    assert parse(encode(pkt)) == pkt


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 254).filter(lambda c: c != Opt.OVERLOAD), st.binary(max_size=40)
        ),
        max_size=12,
    ),
    st.integers(0, 0xFFFFFFFF),
)
def test_fuzz_round_trip(options: list[tuple[int, bytes]], xid: int) -> None:
    pkt = DhcpPacket(xid=xid, chaddr=MAC, options=options)
    back = parse(encode(pkt))
    assert back.xid == xid
    assert [(c, v) for c, v in back.options] == [(c, v) for c, v in options]
