"""Option helpers: PXE 43 sub-options, 60, 93, 94, 97, 77 (both forms), 82, 175."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bootproxy.dhcp.options import (
    BootItem,
    BootServerEntry,
    MenuItem,
    MenuPrompt,
    decode_arch,
    decode_boot_item,
    decode_boot_menu,
    decode_boot_servers,
    decode_client_uuid,
    decode_menu_prompt,
    decode_ndi,
    decode_suboptions,
    decode_user_class,
    decode_vendor_class,
    encode_arch,
    encode_boot_item,
    encode_boot_menu,
    encode_boot_servers,
    encode_client_uuid,
    encode_menu_prompt,
    encode_suboptions,
    encode_user_class,
    is_ipxe,
)
from bootproxy.errors import CodecError

pytestmark = pytest.mark.unit


def test_pxe_43_round_trip_with_menu() -> None:
    sub = [
        (6, b"\x07"),
        (8, encode_boot_servers([BootServerEntry(0x8000, ("10.0.0.1", "10.0.0.2"))])),
        (9, encode_boot_menu([MenuItem(0x8000, b"flexlab")])),
        (10, encode_menu_prompt(MenuPrompt(0, b"PXE"))),
        (71, encode_boot_item(BootItem(0x8000, 0))),
    ]
    raw = encode_suboptions(sub)
    assert raw[-1] == 255
    back = dict(decode_suboptions(raw, end_required=True))
    assert decode_boot_servers(back[8]) == [BootServerEntry(0x8000, ("10.0.0.1", "10.0.0.2"))]
    assert decode_boot_menu(back[9]) == [MenuItem(0x8000, b"flexlab")]
    assert decode_menu_prompt(back[10]) == MenuPrompt(0, b"PXE")
    assert decode_boot_item(back[71]) == BootItem(0x8000, 0)


@pytest.mark.parametrize("raw", [b"\x06\x05\x01", b"\x06", b"\x47\x04\x00\x00"])
def test_43_overruns_and_missing_end(raw: bytes) -> None:
    with pytest.raises(CodecError):
        decode_suboptions(raw, end_required=True)


def test_43_too_long_refused() -> None:
    with pytest.raises(CodecError):
        encode_suboptions([(9, bytes(200)), (10, bytes(60))])


def test_vendor_class_fields() -> None:
    vc = decode_vendor_class(b"PXEClient:Arch:00007:UNDI:003016")
    assert (vc.kind, vc.arch, vc.undi) == ("PXEClient", 7, (3, 16))
    assert decode_vendor_class(b"HTTPClient").arch is None


def test_arch_ndi_uuid() -> None:
    assert decode_arch(encode_arch([7, 0])) == [7, 0]
    assert decode_ndi(b"\x01\x02\x01") == (1, 2, 1)
    u = uuid.uuid4()
    assert decode_client_uuid(encode_client_uuid(u)) == u
    for bad in (b"", b"\x00"):
        with pytest.raises(CodecError):
            decode_arch(bad)
    with pytest.raises(CodecError):
        decode_client_uuid(b"\x01" + bytes(16))


def test_user_class_both_forms() -> None:
    assert decode_user_class(b"iPXE") == [b"iPXE"]
    assert decode_user_class(b"\x04iPXE\x03foo") == [b"iPXE", b"foo"]
    assert is_ipxe(b"iPXE") and is_ipxe(b"\x04iPXE")
    assert not is_ipxe(b"gPXE") and not is_ipxe(None)
    assert encode_user_class([b"iPXE"]) == b"iPXE"
    assert encode_user_class([b"iPXE"], rfc3004=True) == b"\x04iPXE"


def test_relay_82_and_175_are_plain_tlvs() -> None:
    assert decode_suboptions(b"\x01\x04eth7\x02\x03sw1") == [(1, b"eth7"), (2, b"sw1")]
    assert decode_suboptions(b"\x13\x01\x01\x11\x01\x01") == [(19, b"\x01"), (17, b"\x01")]


@given(st.binary(max_size=300))
def test_fuzz_suboptions(data: bytes) -> None:
    for fn in (decode_suboptions, decode_boot_servers, decode_boot_menu, decode_user_class):
        with contextlib.suppress(CodecError):
            fn(data)


def test_43_8_and_43_9_several_entries_round_trip() -> None:
    servers = [BootServerEntry(0x8000, ("10.0.0.1", "10.0.0.2")), BootServerEntry(7, ()),
               BootServerEntry(0x8001, ("192.0.2.9",))]
    menu = [MenuItem(0x8000, b"flexlab"), MenuItem(1, b""), MenuItem(0x8001, b"x" * 255)]
    assert decode_boot_servers(encode_boot_servers(servers)) == servers
    assert decode_boot_menu(encode_boot_menu(menu)) == menu


@pytest.mark.parametrize(("decode", "raw", "message"), [
    (decode_boot_servers, b"\x80\x00", "43.8 entry at offset 0 is truncated"),
    (decode_boot_servers, b"\x80\x00\x02\x0a\x00\x00\x01\x0a\x00",
     "43.8 entry claims 2 addresses, fewer remain"),
    (decode_boot_menu, b"\x80\x00\x01A\x00", "43.9 entry at offset 4 is truncated"),
    (decode_boot_menu, b"\x80\x00\x05abc", "43.9 entry claims 5 description bytes, fewer remain"),
])
def test_43_8_and_43_9_overruns_name_the_option(
    decode: Callable[[bytes], object], raw: bytes, message: str
) -> None:
    with pytest.raises(CodecError, match=re.escape(message)):
        decode(raw)


def test_43_8_and_43_9_refuse_what_one_count_byte_cannot_hold() -> None:
    too_many = "43.8 entry has 256 addresses; at most 255 fit"
    with pytest.raises(CodecError, match=re.escape(too_many)):
        encode_boot_servers([BootServerEntry(1, ("10.0.0.1",) * 256)])
    too_long = "43.9 entry has 256 description bytes; at most 255 fit"
    with pytest.raises(CodecError, match=re.escape(too_long)):
        encode_boot_menu([MenuItem(1, b"x" * 256)])
    with pytest.raises(CodecError, match=re.escape("43.8 address 'nope' is not IPv4")):
        encode_boot_servers([BootServerEntry(1, ("nope",))])
