"""Ethernet / IPv4 / UDP frames built and parsed by hand.

A thousand machines share one raw socket per segment, so each frame costs a
few ``struct`` calls here rather than a scapy packet build (scapy checks the
result in the unit tests).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from harness.machines.sim.errors import FrameError

ETH_P_IP = 0x0800
BROADCAST_MAC = b"\xff" * 6


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(src_mac: bytes, dst_mac: bytes, src_ip: bytes, dst_ip: bytes,
              sport: int, dport: int, payload: bytes, ident: int = 0, ttl: int = 64) -> bytes:
    """A complete Ethernet frame carrying one UDP datagram, checksums filled in."""
    udp_len = 8 + len(payload)
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 17, udp_len)
    udp_head = struct.pack("!HHHH", sport, dport, udp_len, 0)
    csum = checksum(pseudo + udp_head + payload) or 0xFFFF
    udp = struct.pack("!HHHH", sport, dport, udp_len, csum) + payload
    ip_head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ident & 0xFFFF, 0, ttl, 17,
                          0, src_ip, dst_ip)
    ip_head = ip_head[:10] + struct.pack("!H", checksum(ip_head)) + ip_head[12:]
    return dst_mac + src_mac + struct.pack("!H", ETH_P_IP) + ip_head + udp


@dataclass(frozen=True)
class UdpFrame:
    """The parts of a received UDP frame the emulators use."""

    dst_mac: bytes
    src_mac: bytes
    src_ip: bytes
    dst_ip: bytes
    sport: int
    dport: int
    payload: bytes


def parse_udp_frame(frame: bytes) -> UdpFrame:
    """Parse an Ethernet/IPv4/UDP frame; raise FrameError for anything else (or fragments)."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x00":
        raise FrameError("not IPv4")
    ihl = (frame[14] & 0x0F) * 4
    if frame[14] >> 4 != 4 or ihl < 20 or frame[23] != 17:
        raise FrameError("not UDP over IPv4")
    frag = struct.unpack("!H", frame[20:22])[0]
    if frag & 0x3FFF:
        raise FrameError("IP fragment")
    total = struct.unpack("!H", frame[16:18])[0]
    u = 14 + ihl
    sport, dport, ulen = struct.unpack("!HHH", frame[u : u + 6])
    end = min(14 + total, u + ulen, len(frame))
    return UdpFrame(frame[0:6], frame[6:12], frame[26:30], frame[30:34], sport, dport,
                    frame[u + 8 : end])
