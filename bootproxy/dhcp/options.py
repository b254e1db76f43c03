"""Typed helpers for the DHCP options a PXE proxy reads and writes.

Option 43 PXE sub-options (PXE 2.1 table 2-1), 60 vendor class, 93/94/97
(RFC 4578), 77 user class (raw iPXE form and RFC 3004), 82 relay agent
information (RFC 3046) and 175 iPXE encapsulated options. Every decoder raises
`CodecError` on malformed input and nothing else.
"""

from __future__ import annotations

import socket
import struct
import uuid
from dataclasses import dataclass

from bootproxy.errors import CodecError

__all__ = [
    "PXE_BOOT_ITEM",
    "PXE_BOOT_MENU",
    "PXE_BOOT_SERVERS",
    "PXE_DISCOVERY_CONTROL",
    "PXE_MENU_PROMPT",
    "BootItem",
    "BootServerEntry",
    "MenuItem",
    "MenuPrompt",
    "VendorClass",
    "decode_arch",
    "decode_boot_item",
    "decode_boot_menu",
    "decode_boot_servers",
    "decode_client_uuid",
    "decode_menu_prompt",
    "decode_ndi",
    "decode_suboptions",
    "decode_user_class",
    "decode_vendor_class",
    "encode_arch",
    "encode_boot_item",
    "encode_boot_menu",
    "encode_boot_servers",
    "encode_client_uuid",
    "encode_menu_prompt",
    "encode_suboptions",
    "encode_user_class",
    "is_ipxe",
]

# PXE 2.1 table 2-1 sub-option codes inside option 43.
PXE_DISCOVERY_CONTROL = 6
PXE_BOOT_SERVERS = 8
PXE_BOOT_MENU = 9
PXE_MENU_PROMPT = 10
PXE_BOOT_ITEM = 71

# 43.6 bits: 0 no broadcast discovery, 1 no multicast, 2 only listed servers,
# 3 use the boot file name in this packet directly. Bits 4-7 must be zero.
DISCOVERY_USE_BOOTFILE = 0x08


def decode_suboptions(data: bytes, *, end_required: bool = False) -> list[tuple[int, bytes]]:
    """Decode a TLV sub-option area (43, 82, 175); overruns raise `CodecError`.

    PAD (0) is skipped, END (255) stops; `end_required` makes a missing END an
    error (option 43 must end with 255, OFFER-7).
    """
    out: list[tuple[int, bytes]] = []
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            i += 1
            continue
        if code == 255:
            return out
        if i + 1 >= n:
            raise CodecError(f"sub-option {code} at offset {i} has no length byte")
        length = data[i + 1]
        if i + 2 + length > n:
            raise CodecError(
                f"sub-option {code} at offset {i} claims {length} bytes, only {n - i - 2} remain"
            )
        out.append((code, bytes(data[i + 2 : i + 2 + length])))
        i += 2 + length
    if end_required:
        raise CodecError("sub-option area has no END (255)")
    return out


def encode_suboptions(items: list[tuple[int, bytes]], *, end: bool = True) -> bytes:
    """Encode sub-options as TLVs (+ END when `end`); refuse values over 255 bytes or bad codes."""
    out = bytearray()
    for code, value in items:
        if not 0 < code < 255:
            raise CodecError(f"sub-option code {code} is reserved (0 and 255 are PAD and END)")
        if len(value) > 255:
            raise CodecError(f"sub-option {code} value is {len(value)} bytes; at most 255 fit")
        out += bytes((code, len(value))) + bytes(value)
    if end:
        out.append(255)
    if len(out) > 255:
        raise CodecError(f"encoded sub-options are {len(out)} bytes; an option holds 255")
    return bytes(out)


@dataclass(frozen=True)
class BootItem:
    """43.71 PXE boot item: the boot server type and layer a client asks for (and gets echoed)."""

    type: int
    layer: int


def decode_boot_item(value: bytes) -> BootItem:
    """Decode 43.71 (4 bytes: type, layer, both big-endian 16-bit)."""
    if len(value) != 4:
        raise CodecError(f"43.71 boot item must be 4 bytes, got {len(value)}")
    item_type, layer = struct.unpack("!HH", value)
    return BootItem(item_type, layer)


def encode_boot_item(item: BootItem) -> bytes:
    """Encode 43.71 (type and layer as 16-bit big-endian)."""
    if not (0 <= item.type <= 0xFFFF and 0 <= item.layer <= 0xFFFF):
        raise CodecError(f"43.71 type/layer {item.type}/{item.layer} out of 16-bit range")
    return struct.pack("!HH", item.type, item.layer)


@dataclass(frozen=True)
class BootServerEntry:
    """One 43.8 entry: a boot server type and the addresses that serve it."""

    type: int
    addresses: tuple[str, ...]


def _split_typed_entries(
    value: bytes, option: str, unit: int, counted: str
) -> list[tuple[int, bytes]]:
    """Split a 43.8 or 43.9 body into (type, payload) entries.

    Both sub-options repeat one layout, type:16, count:8, then `count` items of
    `unit` bytes (IPv4 addresses in 43.8, description bytes in 43.9), so one
    walker holds the bounds checks for both; `counted` names the items in errors.
    """
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(value):
        if i + 3 > len(value):
            raise CodecError(f"{option} entry at offset {i} is truncated")
        item_type, count = struct.unpack_from("!HB", value, i)
        i += 3
        end = i + unit * count
        if end > len(value):
            raise CodecError(f"{option} entry claims {count} {counted}, fewer remain")
        out.append((item_type, bytes(value[i:end])))
        i = end
    return out


def _join_typed_entries(entries: list[tuple[int, int, bytes]], option: str, counted: str) -> bytes:
    """Encode (type, count, payload) entries in the 43.8/43.9 layout; the count has one byte,
    so more than 255 items is an error."""
    out = bytearray()
    for item_type, count, payload in entries:
        if count > 255:
            raise CodecError(f"{option} entry has {count} {counted}; at most 255 fit")
        out += struct.pack("!HB", item_type, count) + payload
    return bytes(out)


def decode_boot_servers(value: bytes) -> list[BootServerEntry]:
    """Decode 43.8 (type:16, count:8, count x IPv4) repeated."""
    out: list[BootServerEntry] = []
    for item_type, raw in _split_typed_entries(value, "43.8", 4, "addresses"):
        addrs = tuple(socket.inet_ntoa(raw[k : k + 4]) for k in range(0, len(raw), 4))
        out.append(BootServerEntry(item_type, addrs))
    return out


def _ipv4_bytes(addresses: tuple[str, ...]) -> bytes:
    """The 43.8 address list as 4-byte network-order addresses."""
    out = bytearray()
    for addr in addresses:
        try:
            out += socket.inet_aton(addr)
        except OSError as exc:
            raise CodecError(f"43.8 address {addr!r} is not IPv4") from exc
    return bytes(out)


def encode_boot_servers(entries: list[BootServerEntry]) -> bytes:
    """Encode 43.8 entries."""
    return _join_typed_entries(
        [(e.type, len(e.addresses), _ipv4_bytes(e.addresses)) for e in entries],
        "43.8", "addresses",
    )


@dataclass(frozen=True)
class MenuItem:
    """One 43.9 boot menu entry: the boot server type and the text shown to the user."""

    type: int
    description: bytes


def decode_boot_menu(value: bytes) -> list[MenuItem]:
    """Decode 43.9 (type:16, len:8, description) repeated."""
    return [
        MenuItem(item_type, description)
        for item_type, description in _split_typed_entries(value, "43.9", 1, "description bytes")
    ]


def encode_boot_menu(items: list[MenuItem]) -> bytes:
    """Encode 43.9 menu entries."""
    return _join_typed_entries(
        [(item.type, len(item.description), item.description) for item in items],
        "43.9", "description bytes",
    )


@dataclass(frozen=True)
class MenuPrompt:
    """43.10: seconds to wait (0 boot at once, 255 wait for a key) and the prompt text."""

    timeout: int
    prompt: bytes


def decode_menu_prompt(value: bytes) -> MenuPrompt:
    """Decode 43.10 (timeout byte + prompt)."""
    if not value:
        raise CodecError("43.10 menu prompt is empty; it needs at least the timeout byte")
    return MenuPrompt(value[0], bytes(value[1:]))


def encode_menu_prompt(prompt: MenuPrompt) -> bytes:
    """Encode 43.10."""
    if not 0 <= prompt.timeout <= 255:
        raise CodecError(f"43.10 timeout {prompt.timeout} out of 0..255")
    return bytes((prompt.timeout,)) + prompt.prompt


@dataclass(frozen=True)
class VendorClass:
    """Option 60 as a PXE client sends it: the kind and, when present, Arch and UNDI fields."""

    raw: bytes
    kind: str  # "PXEClient", "HTTPClient" or whatever the prefix up to ':' is
    arch: int | None
    undi: tuple[int, int] | None


def decode_vendor_class(value: bytes) -> VendorClass:
    """Decode option 60 (`PXEClient:Arch:00007:UNDI:003016`, CLI-1); lenient on the tail.

    Servers match on the prefix (CLI-1), so only the kind is required; Arch and
    UNDI are decoded when well formed and left None otherwise.
    """
    text = value.decode("ascii", errors="replace")
    parts = text.split(":")
    kind = parts[0]
    arch: int | None = None
    undi: tuple[int, int] | None = None
    if len(parts) >= 3 and parts[1] == "Arch" and parts[2].isdigit() and len(parts[2]) == 5:
        arch = int(parts[2])
    if len(parts) >= 5 and parts[3] == "UNDI" and parts[4].isdigit() and len(parts[4]) == 6:
        undi = (int(parts[4][:3]), int(parts[4][3:]))
    return VendorClass(bytes(value), kind, arch, undi)


def decode_arch(value: bytes) -> list[int]:
    """Decode option 93: a non-empty list of 16-bit architecture codes (CLI-2)."""
    if not value or len(value) % 2:
        raise CodecError(f"option 93 must be a non-empty even number of bytes, got {len(value)}")
    return [struct.unpack_from("!H", value, i)[0] for i in range(0, len(value), 2)]


def encode_arch(arches: list[int]) -> bytes:
    """Encode option 93."""
    if not arches:
        raise CodecError("option 93 needs at least one architecture")
    try:
        return b"".join(struct.pack("!H", a) for a in arches)
    except struct.error as exc:
        raise CodecError(f"architecture codes {arches} are not all 16-bit") from exc


def decode_ndi(value: bytes) -> tuple[int, int, int]:
    """Decode option 94: (interface type, UNDI major, UNDI minor) (CLI-2)."""
    if len(value) != 3:
        raise CodecError(f"option 94 must be 3 bytes, got {len(value)}")
    return value[0], value[1], value[2]


def decode_client_uuid(value: bytes) -> uuid.UUID:
    """Decode option 97: type 0 + 16-byte GUID, as sent (wire byte order, see IPXE-3)."""
    if len(value) != 17 or value[0] != 0:
        raise CodecError(f"option 97 must be type 0 + 16 bytes, got {len(value)} bytes")
    return uuid.UUID(bytes=bytes(value[1:]))


def encode_client_uuid(value: uuid.UUID) -> bytes:
    """Encode option 97 from a UUID (wire byte order)."""
    return b"\x00" + value.bytes


def decode_user_class(value: bytes) -> list[bytes]:
    """Decode option 77 in either form (CLI-4).

    RFC 3004 form is a list of length-prefixed strings; iPXE sends the bare
    string "iPXE". The RFC form is used only when the length prefixes consume
    the value exactly; otherwise the whole value is one raw class.
    """
    if not value:
        raise CodecError("option 77 is empty")
    items: list[bytes] = []
    i = 0
    while i < len(value):
        length = value[i]
        if length == 0 or i + 1 + length > len(value):
            return [bytes(value)]
        items.append(bytes(value[i + 1 : i + 1 + length]))
        i += 1 + length
    return items


def encode_user_class(classes: list[bytes], *, rfc3004: bool = False) -> bytes:
    """Encode option 77: raw (one class, iPXE style) or RFC 3004 length-prefixed."""
    if not classes:
        raise CodecError("option 77 needs at least one class")
    if not rfc3004:
        if len(classes) != 1:
            raise CodecError("the raw option 77 form holds exactly one class")
        return bytes(classes[0])
    out = bytearray()
    for item in classes:
        if not 0 < len(item) <= 255:
            raise CodecError("RFC 3004 user classes must be 1..255 bytes")
        out += bytes((len(item),)) + item
    return bytes(out)


def is_ipxe(user_class: bytes | None) -> bool:
    """True when option 77 marks the client as iPXE, in raw or RFC 3004 form (IPXE-1)."""
    if not user_class:
        return False
    try:
        return b"iPXE" in decode_user_class(user_class)
    except CodecError:
        return False
