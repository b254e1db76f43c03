"""TFTP packet codec (RFC 1350, options per RFC 2347).

Parsing never raises anything but :class:`PacketError`, so the server can treat
any datagram from the network as untrusted input (fuzzed in the unit tests).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from bootproxy.tftp.errors import PacketError


class Opcode(IntEnum):
    """TFTP opcodes (RFC 1350 §5, OACK from RFC 2347)."""

    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6


class ErrorCode(IntEnum):
    """TFTP error codes (RFC 1350 appendix, 8 from RFC 2347)."""

    NOT_DEFINED = 0
    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    DISK_FULL = 3
    ILLEGAL_OPERATION = 4
    UNKNOWN_TID = 5
    FILE_EXISTS = 6
    NO_SUCH_USER = 7
    OPTION_REFUSED = 8


@dataclass(frozen=True)
class Request:
    """A read (RRQ) or write (WRQ) request; option names are lower-cased."""

    opcode: Opcode
    filename: str
    mode: str
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Data:
    """A DATA packet: 16-bit block number and up to blksize bytes."""

    block: int
    payload: bytes


@dataclass(frozen=True)
class Ack:
    """An ACK packet: the 16-bit block number acknowledged (0 acknowledges an OACK)."""

    block: int


@dataclass(frozen=True)
class Error:
    """An ERROR packet: code and human-readable message."""

    code: int
    message: str


@dataclass(frozen=True)
class OptionAck:
    """An OACK packet: the options the server accepted, with their final values."""

    options: dict[str, str]


Packet = Request | Data | Ack | Error | OptionAck


def _split_strings(body: bytes) -> list[bytes]:
    """Split NUL-terminated strings; trailing NUL padding (some ROMs send it) is ignored."""
    if not body.endswith(b"\0"):
        raise PacketError("string field is not NUL-terminated")
    parts = body[:-1].split(b"\0")
    while parts and parts[-1] == b"" and len(parts) > 2:
        parts.pop()
    return parts


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise PacketError(f"{what} is not ASCII") from None


def _options(fields: list[bytes]) -> dict[str, str]:
    """Pair up option name/value strings; the first occurrence of a name wins."""
    options: dict[str, str] = {}
    for i in range(0, len(fields) - 1, 2):
        name = _text(fields[i], "option name").lower()
        if not name:
            raise PacketError("empty option name")
        options.setdefault(name, _text(fields[i + 1], f"value of option {name}"))
    return options


def parse_packet(datagram: bytes) -> Packet:
    """Decode one datagram into a packet, or raise :class:`PacketError`."""
    if len(datagram) < 2:
        raise PacketError(f"datagram of {len(datagram)} bytes has no opcode")
    (raw_op,) = struct.unpack_from("!H", datagram)
    body = datagram[2:]
    try:
        op = Opcode(raw_op)
    except ValueError:
        raise PacketError(f"unknown opcode {raw_op}") from None
    if op in (Opcode.RRQ, Opcode.WRQ):
        fields = _split_strings(body)
        if len(fields) < 2:
            raise PacketError("request lacks a filename or mode")
        filename = _text(fields[0], "filename")
        if not filename:
            raise PacketError("empty filename")
        mode = _text(fields[1], "mode").lower()
        return Request(op, filename, mode, _options(fields[2:]))
    if op is Opcode.DATA:
        if len(body) < 2:
            raise PacketError("DATA packet without a block number")
        return Data(struct.unpack_from("!H", body)[0], bytes(body[2:]))
    if op is Opcode.ACK:
        if len(body) < 2:
            raise PacketError("ACK packet without a block number")
        return Ack(struct.unpack_from("!H", body)[0])
    if op is Opcode.ERROR:
        if len(body) < 2:
            raise PacketError("ERROR packet without an error code")
        code = struct.unpack_from("!H", body)[0]
        message = body[2:].split(b"\0", 1)[0].decode("ascii", "replace")
        return Error(code, message)
    # OACK
    if not body:
        return OptionAck({})
    return OptionAck(_options(_split_strings(body)))


def encode_request(req: Request) -> bytes:
    """Encode an RRQ/WRQ (used by the client and by tests)."""
    parts = [req.filename, req.mode]
    for name, value in req.options.items():
        parts += [name, value]
    return struct.pack("!H", req.opcode) + b"".join(p.encode("ascii") + b"\0" for p in parts)


def encode_data(block: int, payload: bytes) -> bytes:
    """Encode a DATA packet; ``block`` is taken modulo 65536 (block numbers wrap)."""
    return struct.pack("!HH", Opcode.DATA, block & 0xFFFF) + payload


def encode_ack(block: int) -> bytes:
    """Encode an ACK packet; ``block`` is taken modulo 65536."""
    return struct.pack("!HH", Opcode.ACK, block & 0xFFFF)


def encode_error(code: int, message: str) -> bytes:
    """Encode an ERROR packet; non-ASCII characters in the message are replaced."""
    return struct.pack("!HH", Opcode.ERROR, code) + message.encode("ascii", "replace") + b"\0"


def encode_oack(options: dict[str, str]) -> bytes:
    """Encode an OACK packet with the given options, in order."""
    body = b"".join(
        k.encode("ascii") + b"\0" + v.encode("ascii") + b"\0" for k, v in options.items()
    )
    return struct.pack("!H", Opcode.OACK) + body
