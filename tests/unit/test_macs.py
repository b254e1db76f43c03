"""The harness's one MAC parser: every accepted spelling, and clear errors for the rest."""

from __future__ import annotations

import pytest

from harness.errors import FlexlabError
from harness.macs import MacError, mac_bytes, mac_text, normalize_mac, parse_mac

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text", [
    "52:54:00:ab:cd:ef",
    "52:54:00:AB:CD:EF",
    "52-54-00-ab-cd-ef",
    "52-54-00-AB-cd-EF",
    "  52:54:00:ab:cd:ef\n",
    "5254.00ab.cdef",
    "5254.00AB.CDEF",
])
def test_every_spelling_gives_the_canonical_form(text: str) -> None:
    assert normalize_mac(text) == "52:54:00:ab:cd:ef"
    assert parse_mac(text) == "52:54:00:ab:cd:ef"


@pytest.mark.parametrize("text", [
    "",
    "zz:54:00:ab:cd:ef",
    "52:54:00:ab:cd",             # five octets
    "52:54:00:ab:cd:ef:01",       # seven
    "52:54:00-ab:cd:ef",          # mixed separators
    "525400abcdef",               # no separator at all: too easy to mistype a digit
    "52:54:0:ab:cd:ef",           # a one-digit octet
    "5254.00ab.cde",
    "52.54.00.ab.cd.ef",
    "10.0.0.1",
])
def test_anything_else_is_a_clear_error(text: str) -> None:
    assert parse_mac(text) is None
    with pytest.raises(MacError, match="is not a MAC address; write it as 52:54:00:12:34:56"):
        normalize_mac(text)


def test_the_error_names_the_value_and_where_it_came_from() -> None:
    with pytest.raises(MacError) as err:
        normalize_mac("aa-bb", "--serves")
    assert str(err.value).startswith("--serves: 'aa-bb' is not a MAC address")


def test_a_mac_error_is_a_flexlab_error_and_a_value_error() -> None:
    """The CLI prints FlexlabErrors as one line; pydantic validators need ValueError."""
    assert issubclass(MacError, FlexlabError)
    assert issubclass(MacError, ValueError)


def test_bytes_both_ways() -> None:
    assert mac_bytes("52-54-00-AB-CD-EF") == bytes.fromhex("525400abcdef")
    assert mac_text(bytes.fromhex("525400abcdef")) == "52:54:00:ab:cd:ef"
    assert mac_text(b"\x01\x02") == "01:02"  # a hardware address of another length
    with pytest.raises(MacError):
        mac_bytes("52:54:00")


def test_mac_text_of_any_length_is_the_two_digit_colon_form() -> None:
    for raw in (b"", b"\x00", bytes(range(6)), bytes(range(250, 256)), bytes(range(16)),
                bytearray(b"\xab\xcd"), memoryview(b"\x0f\xf0")):
        assert mac_text(raw) == ":".join(f"{b:02x}" for b in bytes(raw))
