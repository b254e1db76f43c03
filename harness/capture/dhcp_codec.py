"""BOOTP/DHCP wire decoding, done by hand so that malformed packets stay visible.

A generic dissector "repairs" packets (drops a missing END, re-encodes options);
conformance checking needs exactly what was on the wire, so this module parses
the raw UDP payload and reports every irregularity instead of hiding it.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from harness.capture.errors import CaptureError
from harness.macs import mac_text

MAGIC = b"\x63\x82\x53\x63"
BOOTP_FIXED = 236

MSG_TYPES = {
    1: "DISCOVER",
    2: "OFFER",
    3: "REQUEST",
    4: "DECLINE",
    5: "ACK",
    6: "NAK",
    7: "RELEASE",
    8: "INFORM",
}


@dataclass(frozen=True)
class PxeOptions(Mapping[int, bytes]):
    """Option 43 (PXE vendor options) split into sub-options.

    Reads as a mapping of sub-option code to value (first instance), so
    ``ev.pxe[6]`` and ``71 in ev.pxe`` work. ``error`` is set when the
    encapsulation is malformed (overrun, no END, too long); ``suboptions`` then
    holds what could be read before the fault.
    """

    raw: bytes
    suboptions: tuple[tuple[int, bytes], ...]
    end_present: bool
    error: str | None

    def __getitem__(self, code: int) -> bytes:
        for c, v in self.suboptions:
            if c == code:
                return v
        raise KeyError(code)

    def __iter__(self) -> Iterator[int]:
        return iter(dict.fromkeys(c for c, _ in self.suboptions))

    def __len__(self) -> int:
        return len({c for c, _ in self.suboptions})

    @property
    def discovery_control(self) -> int | None:
        """43.6 PXE_DISCOVERY_CONTROL bit field, if present and one byte long."""
        v = self.get(6)
        return v[0] if v is not None and len(v) == 1 else None

    @property
    def boot_item(self) -> tuple[int, int] | None:
        """43.71 PXE_BOOT_ITEM as (type, layer), if present and four bytes long."""
        v = self.get(71)
        if v is None or len(v) != 4:
            return None
        t, layer = struct.unpack("!HH", v)
        return t, layer


def ip_str(b: bytes) -> str:
    """Dotted-quad form of four bytes."""
    return str(ipaddress.IPv4Address(b))


def cstring(b: bytes) -> str:
    """Text up to the first NUL, decoded leniently (sname/file/filenames)."""
    return b.split(b"\x00", 1)[0].decode("latin-1")


def _walk_tlv(data: bytes, what: str) -> tuple[list[tuple[int, bytes]], int | None, str | None]:
    """Walk a code/length/value area (DHCP options, PXE sub-options: pad 0 skipped, END
    255 stops): the pairs in wire order, END's offset (None when absent) and an error text
    naming ``what`` when an entry runs past the end of the area."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0:
            i += 1
            continue
        if code == 255:
            return out, i, None
        if i + 1 >= len(data):
            return out, None, f"{what} {code} has no length byte at offset {i}"
        length = data[i + 1]
        if i + 2 + length > len(data):
            return out, None, (f"{what} {code} claims {length} bytes but only "
                               f"{len(data) - i - 2} remain")
        out.append((code, data[i + 2 : i + 2 + length]))
        i += 2 + length
    return out, None, None


def split_options(data: bytes) -> tuple[list[tuple[int, bytes]], bool, str | None]:
    """Split a DHCP option area into (code, value) pairs in wire order.

    Returns the pairs, whether END (255) was seen, and an error text when an
    option runs past the end of the area.
    """
    out, end_at, error = _walk_tlv(data, "option")
    return out, end_at is not None, error


def decode_pxe(raw: bytes) -> PxeOptions:
    """Decode option 43 as PXE sub-options (PXE 2.1 table 2-1)."""
    subs, end_at, error = _walk_tlv(raw, "sub-option")
    if error is None and end_at is not None and end_at + 1 != len(raw):
        error = f"{len(raw) - end_at - 1} bytes after sub-option END"
    if error is None and end_at is None:
        error = "no END (255) sub-option"
    if error is None and len(raw) > 255:
        error = f"option 43 is {len(raw)} bytes, more than 255"
    return PxeOptions(raw=raw, suboptions=tuple(subs), end_present=end_at is not None,
                      error=error)


@dataclass(frozen=True)
class DhcpFields:
    """All fields of one DHCP payload; the capture decoder adds addresses and time."""

    op: int
    htype: int
    hlen: int
    hops: int
    xid: int
    secs: int
    flags: int
    ciaddr: str
    yiaddr: str
    siaddr: str
    giaddr: str
    chaddr: str
    sname_raw: bytes
    file_raw: bytes
    magic_ok: bool
    options: tuple[tuple[int, bytes], ...]
    end_present: bool
    options_error: str | None
    overload: int | None


class NotDhcp(CaptureError, ValueError):
    """The payload is too short to be BOOTP."""


def parse_dhcp(payload: bytes) -> DhcpFields:
    """Parse a BOOTP/DHCP UDP payload; raise NotDhcp if it is shorter than BOOTP."""
    if len(payload) < BOOTP_FIXED:
        raise NotDhcp(f"{len(payload)} bytes, BOOTP needs at least {BOOTP_FIXED}")
    op, htype, hlen, hops, xid, secs, flags = struct.unpack("!BBBBIHH", payload[:12])
    ciaddr, yiaddr, siaddr, giaddr = (ip_str(payload[o : o + 4]) for o in (12, 16, 20, 24))
    chaddr = mac_text(payload[28 : 28 + min(hlen, 16)])
    sname_raw = payload[44:108]
    file_raw = payload[108:236]
    magic_ok = payload[236:240] == MAGIC
    options: list[tuple[int, bytes]] = []
    end = False
    err: str | None = None
    overload: int | None = None
    if magic_ok:
        options, end, err = split_options(payload[240:])
        for code, value in options:
            if code == 52 and len(value) == 1:
                overload = value[0]
        # RFC 2132 §9.3: options continue in file, then sname.
        if overload in (1, 3):
            more, _, e = split_options(file_raw)
            options += more
            err = err or (f"in file field: {e}" if e else None)
        if overload in (2, 3):
            more, _, e = split_options(sname_raw)
            options += more
            err = err or (f"in sname field: {e}" if e else None)
    # positional, in the field order of DhcpFields (the BOOTP header's order)
    return DhcpFields(
        op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr,
        sname_raw, file_raw, magic_ok, tuple(options), end, err, overload,
    )


def joined(options: tuple[tuple[int, bytes], ...], code: int) -> bytes | None:
    """Concatenate all instances of option ``code`` (RFC 3396), or None if absent."""
    parts = [v for c, v in options if c == code]
    return b"".join(parts) if parts else None


def decoded_options(options: tuple[tuple[int, bytes], ...]) -> dict[str, object]:
    """Decode the options the rules use into named values (keys match DhcpEvent)."""
    out: dict[str, object] = {}

    def text(code: int) -> str | None:
        v = joined(options, code)
        return None if v is None else v.rstrip(b"\x00").decode("latin-1")

    def addr(code: int) -> str | None:
        v = joined(options, code)
        return ip_str(v) if v is not None and len(v) == 4 else None

    mt = joined(options, 53)
    out["msg_type"] = MSG_TYPES.get(mt[0], f"TYPE{mt[0]}") if mt else "BOOTP"
    out["vendor_class"] = text(60)
    arch = joined(options, 93)
    if arch is not None:
        out["client_arch"] = tuple(
            struct.unpack("!H", arch[i : i + 2])[0] for i in range(0, len(arch) - 1, 2)
        )
    out["nii"] = joined(options, 94)
    out["uuid"] = joined(options, 97)
    out["user_class"] = joined(options, 77)
    out["ipxe_features"] = joined(options, 175)
    pxe = joined(options, 43)
    if pxe is not None:
        out["pxe"] = decode_pxe(pxe)
    out["server_id"] = addr(54)
    out["relay_agent"] = joined(options, 82)
    pl = joined(options, 55)
    if pl is not None:
        out["param_list"] = tuple(pl)
    out["requested_ip"] = addr(50)
    mms = joined(options, 57)
    if mms is not None and len(mms) == 2:
        out["max_msg_size"] = struct.unpack("!H", mms)[0]
    out["tftp_server_opt"] = text(66)
    out["bootfile_opt"] = text(67)
    return out
