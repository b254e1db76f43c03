"""A strict, struct-based DHCP/BOOTP codec (RFC 2131/2132, option overload, RFC 3396 long options).

The proxy parses every packet on its segments, including hostile ones, so the
parser is strict and bounded: anything it cannot decode raises `CodecError` and
nothing else. No scapy here: it is slow and lenient, and the proxy must be
neither.
"""

from __future__ import annotations

import functools
import socket
import struct
from dataclasses import dataclass, field

from bootproxy.errors import CodecError

__all__ = [
    "BOOTREPLY",
    "BOOTREQUEST",
    "MAGIC_COOKIE",
    "MAX_PACKET_SIZE",
    "MIN_REPLY_SIZE",
    "CodecError",
    "DhcpPacket",
    "MessageType",
    "Opt",
    "encode",
    "parse",
]

BOOTREQUEST = 1
BOOTREPLY = 2
MAGIC_COOKIE = b"\x63\x82\x53\x63"
# Nothing a PXE ROM or relay sends is larger than one Ethernet frame's UDP payload;
# anything bigger is garbage or an attack and is refused before any work is done.
MAX_PACKET_SIZE = 1472
# RFC 2131 §2 / [impl]: old BOOTP relays and ROMs drop replies shorter than 300 bytes.
MIN_REPLY_SIZE = 300

_HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
_HEADER_SIZE = _HEADER.size  # 236
_OPTIONS_OFFSET = _HEADER_SIZE + 4  # after the magic cookie

BROADCAST_FLAG = 0x8000


class Opt:
    """DHCP option codes the proxy reads or writes (RFC 2132, 3046, 4578, iPXE)."""

    PAD = 0
    HOSTNAME = 12
    VENDOR_SPECIFIC = 43
    REQUESTED_ADDRESS = 50
    LEASE_TIME = 51
    OVERLOAD = 52
    MESSAGE_TYPE = 53
    SERVER_ID = 54
    PARAMETER_LIST = 55
    MAX_MESSAGE_SIZE = 57
    VENDOR_CLASS = 60
    CLIENT_ID = 61
    TFTP_SERVER = 66
    BOOTFILE = 67
    USER_CLASS = 77
    RELAY_AGENT = 82
    CLIENT_ARCH = 93
    CLIENT_NDI = 94
    CLIENT_UUID = 97
    IPXE_ENCAP = 175
    END = 255


class MessageType:
    """DHCP message types (option 53, RFC 2132 §9.6)."""

    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8


@dataclass
class DhcpPacket:
    """One DHCP/BOOTP message, decoded.

    Addresses are dotted-quad strings; `chaddr` is the raw 16-byte field (use
    `mac` for the colon form); `sname`/`file` are the field contents up to the
    first NUL. `options` keeps wire order and repeats, so option 82 and 97 can
    be echoed byte for byte; `overload` records whether option 52 was used
    when parsing (it is informational and not compared).
    """

    op: int = BOOTREQUEST
    htype: int = 1
    hlen: int = 6
    hops: int = 0
    xid: int = 0
    secs: int = 0
    flags: int = 0
    ciaddr: str = "0.0.0.0"
    yiaddr: str = "0.0.0.0"
    siaddr: str = "0.0.0.0"
    giaddr: str = "0.0.0.0"
    chaddr: bytes = b"\x00" * 16
    sname: bytes = b""
    file: bytes = b""
    options: list[tuple[int, bytes]] = field(default_factory=list)
    overload: int = field(default=0, compare=False)

    def get(self, code: int) -> bytes | None:
        """Return option `code`, concatenating split instances (RFC 3396), or None if absent."""
        found: bytes | None = None
        parts: list[bytes] | None = None
        for c, value in self.options:
            if c == code:
                if found is None:
                    found = value
                elif parts is None:
                    parts = [found, value]
                else:
                    parts.append(value)
        if parts is not None:
            return b"".join(parts)
        return found

    def has(self, code: int) -> bool:
        """Tell whether option `code` is present at all (even empty)."""
        return any(c == code for c, _ in self.options)

    @property
    def message_type(self) -> int | None:
        """Option 53 as an int, or None when absent or malformed (plain BOOTP)."""
        value = self.get(Opt.MESSAGE_TYPE)
        if value is None or len(value) != 1:
            return None
        return value[0]

    @property
    def mac(self) -> str:
        """The client hardware address in lower-case colon form (first `hlen` bytes)."""
        return self.chaddr[: min(self.hlen, 16)].hex(":")

    @property
    def broadcast(self) -> bool:
        """The client asked for broadcast replies (RFC 2131 §4.1 flags bit)."""
        return bool(self.flags & BROADCAST_FLAG)


@functools.lru_cache(maxsize=4096)
def _ip(raw: bytes) -> str:
    """Dotted quad of 4 header bytes; cached: nearly every request carries 0.0.0.0 and the
    same few relay and client addresses, and four conversions a packet showed in profiles."""
    return socket.inet_ntoa(raw)


@functools.lru_cache(maxsize=4096)
def _ip_bytes(text: str, name: str) -> bytes:
    """Validate and pack a dotted quad; cached: a proxy encodes the same few addresses."""
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts):
        raise CodecError(f"{name} {text!r} is not a dotted-quad IPv4 address")
    return bytes(int(p) for p in parts)


def _cstring(raw: bytes) -> bytes:
    end = raw.find(b"\x00")
    return raw if end < 0 else raw[:end]


def _parse_options(data: bytes, where: str, require_end: bool) -> list[tuple[int, bytes]]:
    """Decode one option area; a missing END, an overrun or bytes after END are errors."""
    options: list[tuple[int, bytes]] = []
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == Opt.PAD:
            i += 1
            continue
        if code == Opt.END:
            rest = data[i + 1 :]
            if rest.strip(b"\x00"):
                raise CodecError(f"{where}: non-pad bytes after END option at offset {i}")
            return options
        if i + 1 >= n:
            raise CodecError(f"{where}: option {code} at offset {i} has no length byte")
        length = data[i + 1]
        start = i + 2
        if start + length > n:
            raise CodecError(
                f"{where}: option {code} at offset {i} claims {length} bytes, "
                f"only {n - start} remain"
            )
        options.append((code, data[start : start + length]))  # a slice of bytes is bytes
        i = start + length
    if require_end:
        raise CodecError(f"{where}: option area has no END (255) option")
    return options


def parse(data: bytes) -> DhcpPacket:
    """Decode a DHCP message from UDP payload bytes; raise `CodecError` for anything malformed."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_PACKET_SIZE:
        raise CodecError(f"packet of {len(data)} bytes exceeds the {MAX_PACKET_SIZE}-byte limit")
    if len(data) < _OPTIONS_OFFSET:
        raise CodecError(f"packet of {len(data)} bytes is shorter than a DHCP header (240)")
    (op, htype, hlen, hops, xid, secs, flags, ci, yi, si, gi, chaddr, sname_raw, file_raw) = (
        _HEADER.unpack_from(data)
    )
    if op not in (BOOTREQUEST, BOOTREPLY):
        raise CodecError(f"op {op} is neither BOOTREQUEST (1) nor BOOTREPLY (2)")
    if hlen > 16:
        raise CodecError(f"hlen {hlen} is larger than the 16-byte chaddr field")
    if data[_HEADER_SIZE:_OPTIONS_OFFSET] != MAGIC_COOKIE:
        raise CodecError(
            f"magic cookie {data[_HEADER_SIZE:_OPTIONS_OFFSET].hex()} is not 63825363 "
            "(plain BOOTP is not served)"
        )
    options = _parse_options(data[_OPTIONS_OFFSET:], "options", require_end=True)
    overload = 0
    sname = _cstring(sname_raw)
    file = _cstring(file_raw)
    overload_values = [v for c, v in options if c == Opt.OVERLOAD]
    if overload_values:
        if len(overload_values) > 1 or len(overload_values[0]) != 1:
            raise CodecError("option 52 (overload) must appear once with one byte")
        overload = overload_values[0][0]
        if overload not in (1, 2, 3):
            raise CodecError(f"option 52 (overload) value {overload} is not 1, 2 or 3")
        options = [(c, v) for c, v in options if c != Opt.OVERLOAD]
        # RFC 2131 §4.1: options field first, then 'file', then 'sname'.
        if overload & 1:
            options += _parse_options(file_raw, "file (overloaded)", require_end=True)
            file = b""
        if overload & 2:
            options += _parse_options(sname_raw, "sname (overloaded)", require_end=True)
            sname = b""
        if any(c == Opt.OVERLOAD for c, _ in options):
            raise CodecError("option 52 (overload) appears inside an overloaded field (loop)")
    return DhcpPacket(
        op=op,
        htype=htype,
        hlen=hlen,
        hops=hops,
        xid=xid,
        secs=secs,
        flags=flags,
        ciaddr=_ip(ci),
        yiaddr=_ip(yi),
        siaddr=_ip(si),
        giaddr=_ip(gi),
        chaddr=bytes(chaddr),
        sname=sname,
        file=file,
        options=options,
        overload=overload,
    )


def _encode_options(options: list[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for code, value in options:
        if not 0 < code < 255:
            raise CodecError(f"option code {code} cannot be encoded (PAD and END are implicit)")
        if type(value) is not bytes:
            value = bytes(value)
        if len(value) <= 255:  # the common case: one instance (empty included)
            out.append(code)
            out.append(len(value))
            out += value
            continue
        # RFC 3396: a value longer than 255 bytes is split into consecutive instances.
        for start in range(0, len(value), 255):
            chunk = value[start : start + 255]
            out += bytes((code, len(chunk))) + chunk
    return bytes(out)


def encode(packet: DhcpPacket, *, pad_to: int = MIN_REPLY_SIZE) -> bytes:
    """Encode `packet` without option overload, padded to `pad_to` bytes; `CodecError` if invalid.

    `file` and `sname` must leave room for their NUL terminator (OFFER-8).
    """
    if not (0 <= packet.op <= 0xFF and 0 <= packet.htype <= 0xFF and 0 <= packet.hlen <= 16
            and 0 <= packet.hops <= 0xFF and 0 <= packet.xid <= 0xFFFFFFFF
            and 0 <= packet.secs <= 0xFFFF and 0 <= packet.flags <= 0xFFFF):
        # the common case costs one test; only a bad packet walks the fields for the message
        for name, value, limit in (
            ("op", packet.op, 0xFF),
            ("htype", packet.htype, 0xFF),
            ("hlen", packet.hlen, 16),
            ("hops", packet.hops, 0xFF),
            ("xid", packet.xid, 0xFFFFFFFF),
            ("secs", packet.secs, 0xFFFF),
            ("flags", packet.flags, 0xFFFF),
        ):
            if not 0 <= value <= limit:
                raise CodecError(f"{name} {value} is out of range 0..{limit}")
    if len(packet.chaddr) > 16:
        raise CodecError(f"chaddr is {len(packet.chaddr)} bytes; the field holds 16")
    if len(packet.sname) > 63 or b"\x00" in packet.sname:
        raise CodecError("sname must be at most 63 bytes without NUL (it is NUL-terminated)")
    if len(packet.file) > 127 or b"\x00" in packet.file:
        raise CodecError("file must be at most 127 bytes without NUL (it is NUL-terminated)")
    for code, _ in packet.options:
        if code == Opt.OVERLOAD:
            raise CodecError("option 52 (overload) is chosen by the encoder, do not pass it")
    header = _HEADER.pack(
        packet.op,
        packet.htype,
        packet.hlen,
        packet.hops,
        packet.xid,
        packet.secs,
        packet.flags,
        _ip_bytes(packet.ciaddr, "ciaddr"),
        _ip_bytes(packet.yiaddr, "yiaddr"),
        _ip_bytes(packet.siaddr, "siaddr"),
        _ip_bytes(packet.giaddr, "giaddr"),
        packet.chaddr.ljust(16, b"\x00"),
        packet.sname.ljust(64, b"\x00"),
        packet.file.ljust(128, b"\x00"),
    )
    body = header + MAGIC_COOKIE + _encode_options(packet.options) + bytes((Opt.END,))
    if len(body) > MAX_PACKET_SIZE:
        raise CodecError(f"encoded packet is {len(body)} bytes, over the {MAX_PACKET_SIZE} limit")
    if len(body) < pad_to:
        body += b"\x00" * (pad_to - len(body))
    return body
