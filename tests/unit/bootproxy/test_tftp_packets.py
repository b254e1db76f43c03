"""TFTP packet codec: round trips, tolerated quirks, and fuzzing of the parser."""

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bootproxy.tftp.errors import PacketError
from bootproxy.tftp.packets import (
    Ack,
    Data,
    Error,
    Opcode,
    OptionAck,
    Request,
    encode_ack,
    encode_data,
    encode_error,
    encode_oack,
    encode_request,
    parse_packet,
)

pytestmark = pytest.mark.unit


def test_rrq_with_options_round_trips_and_lowercases_names() -> None:
    raw = b"\x00\x01ipxe.efi\x00OCTET\x00BLKSIZE\x001468\x00tsize\x000\x00"
    packet = parse_packet(raw)
    assert packet == Request(Opcode.RRQ, "ipxe.efi", "octet", {"blksize": "1468", "tsize": "0"})
    assert isinstance(packet, Request)
    assert parse_packet(encode_request(packet)) == packet


def test_rrq_with_trailing_nul_padding_is_accepted() -> None:
    packet = parse_packet(b"\x00\x01file\x00octet\x00\x00\x00\x00")
    assert isinstance(packet, Request)
    assert packet.options == {}


@pytest.mark.parametrize("raw", [
    b"", b"\x00", b"\x00\x09xx", b"\x00\x01file", b"\x00\x01file\x00", b"\x00\x01\x00octet\x00",
    b"\x00\x03\x00", b"\x00\x04", b"\x00\x05\x01", b"\x00\x01f\xffile\x00octet\x00",
])
def test_malformed_packets_raise_packet_error(raw: bytes) -> None:
    with pytest.raises(PacketError):
        parse_packet(raw)


def test_data_ack_error_oack_round_trip() -> None:
    assert parse_packet(encode_data(65536 + 7, b"xyz")) == Data(7, b"xyz")
    assert parse_packet(encode_ack(3)) == Ack(3)
    assert parse_packet(encode_error(8, "no tsize")) == Error(8, "no tsize")
    assert parse_packet(encode_oack({"blksize": "1024"})) == OptionAck({"blksize": "1024"})


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_parser_only_parses_or_raises_its_own_error(raw: bytes) -> None:
    with contextlib.suppress(PacketError):
        parse_packet(raw)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([1, 2, 3, 4, 5, 6]), st.lists(st.binary(max_size=20), max_size=8))
def test_parser_on_nul_separated_fields(opcode: int, fields: list[bytes]) -> None:
    raw = struct.pack("!H", opcode) + b"\0".join(fields) + b"\0"
    with contextlib.suppress(PacketError):
        parse_packet(raw)
