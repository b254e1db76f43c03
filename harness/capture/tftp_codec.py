"""TFTP wire decoding (RFC 1350, with option extension RFC 2347)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

OPCODES = {1: "RRQ", 2: "WRQ", 3: "DATA", 4: "ACK", 5: "ERROR", 6: "OACK"}


@dataclass(frozen=True)
class TftpFields:
    """Decoded TFTP payload; the capture decoder adds addresses and time."""

    opcode: int
    op_name: str
    filename: str | None = None
    mode: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    block: int | None = None
    error_code: int | None = None
    error_msg: str | None = None
    data_len: int | None = None
    malformed: str | None = None


def _strings(data: bytes) -> tuple[list[str], bool]:
    """NUL-terminated strings; the flag is False when the last one lacks its NUL."""
    parts = data.split(b"\x00")
    complete = parts[-1] == b""
    if complete:
        parts = parts[:-1]
    return [p.decode("latin-1") for p in parts], complete


def parse_tftp(payload: bytes) -> TftpFields:
    """Decode one TFTP packet; never raises, sets ``malformed`` instead."""
    if len(payload) < 2:
        return TftpFields(opcode=-1, op_name="SHORT", malformed="fewer than 2 bytes")
    (opcode,) = struct.unpack("!H", payload[:2])
    name = OPCODES.get(opcode, f"OP{opcode}")
    body = payload[2:]
    if opcode in (1, 2):
        strs, complete = _strings(body)
        bad = None if complete and len(strs) >= 2 else "request not NUL-terminated"
        fn = strs[0] if strs else None
        mode = strs[1].lower() if len(strs) > 1 else None
        rest = strs[2:]
        if len(rest) % 2:
            bad = bad or "option without a value"
        opts = tuple((rest[i].lower(), rest[i + 1]) for i in range(0, len(rest) - 1, 2))
        return TftpFields(opcode, name, filename=fn, mode=mode, options=opts, malformed=bad)
    if opcode == 3:
        if len(body) < 2:
            return TftpFields(opcode, name, malformed="DATA without block number")
        return TftpFields(
            opcode, name, block=struct.unpack("!H", body[:2])[0], data_len=len(body) - 2
        )
    if opcode == 4:
        if len(body) < 2:
            return TftpFields(opcode, name, malformed="ACK without block number")
        return TftpFields(opcode, name, block=struct.unpack("!H", body[:2])[0])
    if opcode == 5:
        if len(body) < 2:
            return TftpFields(opcode, name, malformed="ERROR without code")
        strs, complete = _strings(body[2:])
        return TftpFields(
            opcode,
            name,
            error_code=struct.unpack("!H", body[:2])[0],
            error_msg=strs[0] if strs else "",
            malformed=None if complete else "error message not NUL-terminated",
        )
    if opcode == 6:
        strs, complete = _strings(body)
        bad = None if complete and len(strs) % 2 == 0 else "OACK options malformed"
        opts = tuple((strs[i].lower(), strs[i + 1]) for i in range(0, len(strs) - 1, 2))
        return TftpFields(opcode, name, options=opts, malformed=bad)
    return TftpFields(opcode, name, malformed=f"unknown opcode {opcode}")
