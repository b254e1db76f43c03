"""Build synthetic captures with scapy: the fake recorder for the unit tier.

Payloads are assembled byte by byte (not with scapy's DHCP layer) so that a
test can put exactly one defect on the wire: a missing END, an overrunning
sub-option, an option in the wrong place.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from harness.capture.dhcp_codec import MAGIC
from harness.macs import mac_bytes

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
BROADCAST_IP = "255.255.255.255"


@dataclass(frozen=True)
class Host:
    """A station on the wire: MAC and IPv4 address."""

    mac: str
    ip: str


BROADCAST = Host(BROADCAST_MAC, BROADCAST_IP)


def ip4(a: str) -> bytes:
    """Four bytes of a dotted-quad address."""
    return ipaddress.IPv4Address(a).packed


def pxe_vendor_class(arch: int, undi: str = "002001", prefix: str = "PXEClient") -> bytes:
    """Option 60 as a PXE ROM sends it: ``PXEClient:Arch:NNNNN:UNDI:MMMmmm``."""
    return f"{prefix}:Arch:{arch:05d}:UNDI:{undi}".encode()


def pxe43(subs: list[tuple[int, bytes]], end: bool = True) -> bytes:
    """Encode PXE sub-options for option 43, with END unless told otherwise."""
    out = b"".join(bytes([c, len(v)]) + v for c, v in subs)
    return out + (b"\xff" if end else b"")


def encode_options(options: list[tuple[int, bytes]], end: bool = True) -> bytes:
    """Encode DHCP options in the given order; values longer than 255 are split."""
    out = bytearray()
    for code, value in options:
        chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [b""]
        for chunk in chunks:
            out += bytes([code, len(chunk)]) + chunk
    if end:
        out.append(255)
    return bytes(out)


def dhcp_payload(
    op: int,
    xid: int,
    chaddr: str,
    options: list[tuple[int, bytes]],
    *,
    ciaddr: str = "0.0.0.0",
    yiaddr: str = "0.0.0.0",
    siaddr: str = "0.0.0.0",
    giaddr: str = "0.0.0.0",
    flags: int = 0,
    hops: int = 0,
    secs: int = 0,
    sname: bytes = b"",
    file: bytes = b"",
    end: bool = True,
    pad_to: int = 300,
    raw_options: bytes | None = None,
) -> bytes:
    """A BOOTP/DHCP payload; ``raw_options`` replaces the encoded option area."""
    hw = mac_bytes(chaddr)
    head = struct.pack("!BBBBIHH", op, 1, len(hw), hops, xid, secs, flags)
    head += ip4(ciaddr) + ip4(yiaddr) + ip4(siaddr) + ip4(giaddr)
    head += hw.ljust(16, b"\x00") + sname.ljust(64, b"\x00")[:64] + file.ljust(128, b"\x00")[:128]
    opts = raw_options if raw_options is not None else encode_options(options, end)
    body = head + MAGIC + opts
    return body.ljust(pad_to, b"\x00")


@dataclass
class PcapBuilder:
    """Collects frames with increasing timestamps and writes them as a pcap."""

    t: float = 1_764_000_000.0
    frames: list[Packet] = field(default_factory=list)
    seqs: dict[tuple[str, int, str, int], int] = field(default_factory=dict)

    def udp(
        self, src: Host, dst: Host, sport: int, dport: int, payload: bytes, dt: float = 0.01
    ) -> int:
        """Append one UDP frame ``dt`` seconds after the last; return its frame number."""
        self.t += dt
        pkt = (
            Ether(src=src.mac, dst=dst.mac)
            / IP(src=src.ip, dst=dst.ip, ttl=64)
            / UDP(sport=sport, dport=dport)
            / Raw(payload)
        )
        pkt.time = self.t
        self.frames.append(pkt)
        return len(self.frames)

    def tcp(
        self,
        src: Host,
        dst: Host,
        sport: int,
        dport: int,
        payload: bytes,
        dt: float = 0.01,
        flags: str = "PA",
    ) -> int:
        """Append one TCP segment (no handshake is modelled); return its frame number."""
        self.t += dt
        key = (src.ip, sport, dst.ip, dport)
        seq = self.seqs.get(key, 1000)
        self.seqs[key] = seq + len(payload)  # keep-alive: the next request follows on
        pkt = (
            Ether(src=src.mac, dst=dst.mac)
            / IP(src=src.ip, dst=dst.ip, ttl=64)
            / TCP(sport=sport, dport=dport, flags=flags, seq=seq)
            / Raw(payload)
        )
        pkt.time = self.t
        self.frames.append(pkt)
        return len(self.frames)

    def write(self, path: str) -> str:
        """Write the frames to ``path`` (classic pcap, Ethernet) and return the path."""
        wrpcap(path, self.frames)
        return path
