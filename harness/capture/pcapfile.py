"""Read frames from a pcap or pcapng file, refusing truncated or corrupt files.

scapy reads frames but stops silently at a cut-off record; a conformance
verdict on half a capture would be wrong, so the record structure is walked
first and a truncated file is reported with the frame it breaks at.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from scapy.utils import PcapReader

from harness.capture.errors import CaptureError

PCAP_MAGICS = {
    b"\xa1\xb2\xc3\xd4": ">",
    b"\xd4\xc3\xb2\xa1": "<",
    b"\xa1\xb2\x3c\x4d": ">",
    b"\x4d\x3c\xb2\xa1": "<",
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


@dataclass(frozen=True)
class IpFrame:
    """One IPv4 frame reduced to what the decoders need, with its raw IP bytes."""

    number: int
    time: float
    src_mac: str
    dst_mac: str
    ip: bytes  # the IPv4 datagram, trimmed to its total length


def check_structure(path: str) -> int:
    """Walk the record headers of ``path``; return the record count.

    Raises CaptureError for a missing, empty, unknown-format or truncated file.
    """
    try:
        size = os.path.getsize(path)
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise CaptureError(f"{path}: cannot open capture ({e.strerror}); check the path") from e
    with f:
        head = f.read(24)
        if len(head) < 4:
            raise CaptureError(f"{path}: empty or not a capture file (size {size} bytes)")
        magic = head[:4]
        if magic in PCAP_MAGICS:
            return _walk_pcap(path, f, head, PCAP_MAGICS[magic], size)
        if magic == PCAPNG_MAGIC:
            return _walk_pcapng(path, f, size)
    raise CaptureError(
        f"{path}: not a pcap or pcapng file (magic {magic.hex()}); "
        "record with tcpdump -w or convert with editcap"
    )


def _truncated(path: str, frames: int, offset: int) -> CaptureError:
    return CaptureError(
        f"{path}: capture is truncated after frame {frames} (byte {offset}); "
        "the recorder was probably killed — record again, or cut the broken tail "
        f"with `editcap -r {os.path.basename(path)} fixed.pcap 1-{frames}`"
    )


def _walk_pcap(path: str, f: BinaryIO, head: bytes, endian: str, size: int) -> int:
    if len(head) < 24:
        raise CaptureError(f"{path}: pcap global header is cut short ({len(head)} of 24 bytes)")
    offset, frames = 24, 0
    read = f.read
    while offset < size:
        rec = read(16)
        if len(rec) < 16:
            raise _truncated(path, frames, offset)
        caplen = struct.unpack(endian + "I", rec[8:12])[0]
        if offset + 16 + caplen > size:
            raise _truncated(path, frames, offset)
        f.seek(caplen, 1)
        offset += 16 + caplen
        frames += 1
    return frames


def _walk_pcapng(path: str, f: BinaryIO, size: int) -> int:
    offset, frames, endian = 0, 0, "<"
    f.seek(0)
    read = f.read
    while offset < size:
        hdr = read(12)
        if len(hdr) < 12:
            raise _truncated(path, frames, offset)
        btype = hdr[:4]
        if btype == PCAPNG_MAGIC:
            endian = "<" if hdr[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        (blen,) = struct.unpack(endian + "I", hdr[4:8])
        if blen < 12 or blen % 4 or offset + blen > size:
            raise _truncated(path, frames, offset)
        (btype_n,) = struct.unpack(endian + "I", btype)
        if btype_n in (3, 6):  # simple / enhanced packet block
            frames += 1
        f.seek(offset + blen)
        offset += blen
    return frames


def iter_ip_frames(path: str) -> Iterator[tuple[int, IpFrame | None]]:
    """Yield (frame number, IpFrame or None for non-IPv4/fragments) for every frame."""
    try:
        reader = PcapReader(path)
    except Exception as e:  # scapy raises its own generic exception types here
        raise CaptureError(f"{path}: scapy cannot read this capture ({e})") from e
    with reader:
        for number, pkt in enumerate(reader, start=1):
            ip = pkt.getlayer(IP)
            if ip is None or ip.flags.MF or ip.frag:
                yield number, None
                continue
            eth = pkt.getlayer(Ether)
            raw = bytes(ip)
            total = ip.len if ip.len else len(raw)
            yield number, IpFrame(
                number=number,
                time=float(pkt.time),
                src_mac=str(eth.src).lower() if eth is not None else "",
                dst_mac=str(eth.dst).lower() if eth is not None else "",
                ip=raw[:total],
            )
