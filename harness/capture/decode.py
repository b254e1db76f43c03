"""Turn a pcap into typed DHCP, TFTP and HTTP events: ``decode_pcap``."""

from __future__ import annotations

import socket
import struct
from collections import deque
from typing import Any

from harness.capture.dhcp_codec import NotDhcp, cstring, decoded_options, parse_dhcp
from harness.capture.errors import CaptureError
from harness.capture.events import Capture, DhcpEvent, HttpEvent, TftpEvent
from harness.capture.http_codec import parse_http_start
from harness.capture.pcapfile import IpFrame, check_structure, iter_ip_frames
from harness.capture.tftp_codec import parse_tftp

DHCP_PORTS = frozenset({67, 68, 4011})
TFTP_PORT = 69


def _is_dhcp(sport: int, dport: int) -> bool:
    """DHCP by port: 67/68/4011 on both ends, or a server port (67, 4011) on one end.

    The second case keeps replies sent to a wrong client port visible, so the
    rules can flag them instead of never seeing them.
    """
    if sport in DHCP_PORTS and dport in DHCP_PORTS:
        return True
    return sport in (67, 4011) or dport in (67, 4011)


def _addrs(fr: IpFrame, sport: int, dport: int) -> dict[str, Any]:
    return {
        "frame": fr.number,
        "time": fr.time,
        "src_mac": fr.src_mac,
        "dst_mac": fr.dst_mac,
        "src_ip": socket.inet_ntoa(fr.ip[12:16]),  # ipaddress objects cost 3x as much
        "dst_ip": socket.inet_ntoa(fr.ip[16:20]),
        "sport": sport,
        "dport": dport,
    }


def _dhcp_event(fr: IpFrame, sport: int, dport: int, payload: bytes) -> DhcpEvent | None:
    try:
        f = parse_dhcp(payload)
    except NotDhcp:
        return None
    if f.op not in (1, 2) or (not f.magic_ok and not (sport in DHCP_PORTS and dport in DHCP_PORTS)):
        return None  # a one-sided port match that is not DHCP at all
    named = decoded_options(f.options) if f.magic_ok else {"msg_type": "BOOTP"}
    return DhcpEvent(
        **_addrs(fr, sport, dport),
        **vars(f),
        broadcast=bool(f.flags & 0x8000),
        sname=cstring(f.sname_raw),
        file=cstring(f.file_raw),
        dhcp_len=len(payload),
        **named,
    )


def decode_pcap(path: str, require_dhcp: bool = True) -> Capture:
    """Decode every DHCP (67/68/4011), TFTP and HTTP packet in ``path``.

    TFTP transfers are followed from their request: a server answers from a new
    port, so any UDP packet to or from a requesting client's address and port is
    part of its transfer. Raises CaptureError for an unusable file, and, unless
    ``require_dhcp`` is False, for a capture without any DHCP packet (almost
    always the wrong interface or a capture filter that dropped it).
    """
    check_structure(path)
    dhcp: list[DhcpEvent] = []
    tftp: list[TftpEvent] = []
    http: list[HttpEvent] = []
    tftp_clients: set[tuple[bytes, int]] = set()
    http_seen: set[tuple[bytes, int, int, int]] = set()
    frames = skipped = duplicates = 0
    recent: set[bytes] = set()  # datagrams of the last millisecond (cooked captures)
    window: deque[tuple[float, bytes]] = deque()
    for number, fr in iter_ip_frames(path):
        frames = number
        if fr is None or len(fr.ip) < 20:
            skipped += fr is None
            continue
        if fr.cooked:
            # `tcpdump -i any` records a packet once per interface it crosses (veth,
            # bridge): the same datagram within a millisecond is one packet, not two
            while window and window[0][0] < fr.time - 0.001:
                recent.discard(window.popleft()[1])
            if fr.ip in recent:
                duplicates += 1
                continue
            recent.add(fr.ip)
            window.append((fr.time, fr.ip))
        ihl = (fr.ip[0] & 0x0F) * 4
        proto = fr.ip[9]
        seg = fr.ip[ihl:]
        if proto == 17 and len(seg) >= 8:
            sport, dport, ulen = struct.unpack("!HHH", seg[:6])
            payload = seg[8:ulen] if ulen >= 8 else seg[8:]
            src = (fr.ip[12:16], sport)
            dst = (fr.ip[16:20], dport)
            if _is_dhcp(sport, dport):
                ev = _dhcp_event(fr, sport, dport, payload)
                if ev is not None:
                    dhcp.append(ev)
                    continue
            is_req = dport == TFTP_PORT
            if is_req or sport == TFTP_PORT or src in tftp_clients or dst in tftp_clients:
                t = parse_tftp(payload)
                if is_req:
                    # any packet to 69 expects its answer from a new port (an illegal
                    # opcode gets ERROR 4 that way): follow the sender's port
                    tftp_clients.add(src)
                tftp.append(TftpEvent(**_addrs(fr, sport, dport), **vars(t)))
        elif proto == 6 and len(seg) >= 20:
            sport, dport, seq = struct.unpack("!HHI", seg[:8])
            data = seg[(seg[12] >> 4) * 4 :]
            h = parse_http_start(data)
            key = (fr.ip[12:20], sport, dport, seq)
            if h is not None and key not in http_seen:  # a TCP retransmission is not a new request
                http_seen.add(key)
                http.append(
                    HttpEvent(
                        **_addrs(fr, sport, dport),
                        **vars(h),
                        range=h.header("Range"),
                        host=h.header("Host"),
                    )
                )
    if require_dhcp and not dhcp:
        raise CaptureError(
            f"{path}: no DHCP packets among {frames} frames; capture on the client's "
            "segment without a filter that drops UDP 67/68/4011"
        )
    return Capture(
        path=path,
        frames=frames,
        dhcp=dhcp,
        tftp=tftp,
        http=http,
        skipped=skipped,
        duplicates=duplicates,
    )
