"""DHCP probe frames on the wire: building the DISCOVERs site-check sends, reading the replies.

site-check talks to the LAN through a packet socket (it has no address to receive on
before a lease, and a probe MAC is not the interface's own), so it builds whole Ethernet
frames and reads whole frames back. Everything that arrives is hostile until parsed:
:func:`parse_frame` returns ``None`` for frames that are not DHCP at all and raises
:class:`MalformedReply` for DHCP that cannot be read — never anything else — so the probe
can count and report bad replies instead of crashing on them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from dataclasses import dataclass, field

from harness import macs
from harness.capture.dhcp_codec import NotDhcp, cstring, joined, parse_dhcp
from harness.machines.sim.frames import checksum
from harness.macs import MacError, mac_text
from harness.sitecheck.model import SiteCheckError

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
ETH_P_IP = 0x0800
BOOTREQUEST, BOOTREPLY = 1, 2
DISCOVER, OFFER, REQUEST, ACK = 1, 2, 3, 5
BROADCAST_FLAG = 0x8000
MIN_BOOTP = 300  # RFC 2131 §2 / old relays drop anything shorter
SERVER_PORT, CLIENT_PORT = 67, 68

# A UEFI x64 PXE ROM's vendor class (32 bytes, CLI-1): servers match its first 9 bytes
PXE_VENDOR_CLASS = b"PXEClient:Arch:00007:UNDI:003016"
PXE_ARCH = 7
# what a plain OS DHCP client asks for: mask, router, DNS, hostname, domain, broadcast,
# NTP, lease, server id, T1, T2
PLAIN_PARAMS = bytes((1, 3, 6, 12, 15, 28, 42, 51, 54, 58, 59))
# what a PXE ROM asks for: the above plus 43 (PXE options), 60, 66 (TFTP server), 67 (file),
# 97 and 128-135 (PXE-reserved, sent by real ROMs)
PXE_PARAMS = bytes((1, 3, 6, 12, 15, 43, 54, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133,
                    134, 135))


class MalformedReply(SiteCheckError, ValueError):
    """A frame addressed to the DHCP ports whose DHCP payload cannot be read."""


def mac_bytes(mac: str) -> bytes:
    """Six bytes of a MAC (:func:`harness.macs.mac_bytes`); SiteCheckError naming the bad
    value otherwise, so one check fails instead of the whole run."""
    try:
        return macs.mac_bytes(mac)
    except MacError as exc:
        raise SiteCheckError(str(exc)) from None


def probe_guid(mac: str) -> bytes:
    """A stable client GUID for option 97 (type 0 + 16 bytes), derived from the probe MAC so
    that a retry is byte for byte the same request, as a real ROM's retransmission is."""
    return b"\x00" + hashlib.sha256(b"flexlab-sitecheck " + mac_bytes(mac)).digest()[:16]


def _options(options: list[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for code, value in options:
        out += bytes((code, len(value))) + value
    return bytes(out) + b"\xff"


def bootp_payload(
    op: int, mac: str, xid: int, options: list[tuple[int, bytes]], *, flags: int = 0,
    yiaddr: str = "0.0.0.0", siaddr: str = "0.0.0.0", giaddr: str = "0.0.0.0",
    file: bytes = b"",
) -> bytes:
    """A BOOTP/DHCP payload (options in the given order, then END), padded to 300 bytes."""
    chaddr = mac_bytes(mac) + b"\0" * 10
    addr = [ipaddress.IPv4Address(a).packed for a in ("0.0.0.0", yiaddr, siaddr, giaddr)]
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", op, 1, 6, 0, xid, 0, flags, *addr,
                         chaddr, b"", file)
    return (header + b"\x63\x82\x53\x63" + _options(options)).ljust(MIN_BOOTP, b"\0")


def bootp_discover(mac: str, xid: int, options: list[tuple[int, bytes]]) -> bytes:
    """A DHCPDISCOVER payload from ``mac`` with the broadcast flag set (replies then reach
    us as broadcasts, whatever MAC we probe as)."""
    return bootp_payload(BOOTREQUEST, mac, xid, [(53, bytes((DISCOVER,))), *options],
                         flags=BROADCAST_FLAG)


def udp_frame(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, sport: int, dport: int,
              payload: bytes) -> bytes:
    """Ethernet + IPv4 + UDP (checksums computed) around ``payload``."""
    src, dst = ipaddress.IPv4Address(src_ip).packed, ipaddress.IPv4Address(dst_ip).packed
    udp_len = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    ip = struct.pack("!BBHHHBB", 0x45, 0x10, 20 + udp_len, 0, 0, 64, 17) + b"\0\0" + src + dst
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + struct.pack("!H", ETH_P_IP) + ip + udp


def udp_broadcast_frame(src_mac: str, payload: bytes) -> bytes:
    """What a client without an address sends (0.0.0.0:68 -> 255.255.255.255:67), so it
    reaches only this LAN's broadcast domain."""
    return udp_frame(src_mac, BROADCAST_MAC, "0.0.0.0", "255.255.255.255", CLIENT_PORT,
                     SERVER_PORT, payload)


def plain_discover_frame(mac: str, xid: int) -> bytes:
    """The DISCOVER an ordinary OS DHCP client sends: no PXE options at all."""
    opts = [(61, b"\x01" + mac_bytes(mac)), (55, PLAIN_PARAMS), (57, struct.pack("!H", 1500))]
    return udp_broadcast_frame(mac, bootp_discover(mac, xid, opts))


def pxe_discover_frame(mac: str, xid: int) -> bytes:
    """The DISCOVER a UEFI x64 PXE ROM sends (CLI-1/2): 60 PXEClient, 93, 94, 97, 55."""
    opts = [
        (57, struct.pack("!H", 1464)),
        (55, PXE_PARAMS),
        (97, probe_guid(mac)),
        (94, b"\x01\x03\x10"),
        (93, struct.pack("!H", PXE_ARCH)),
        (60, PXE_VENDOR_CLASS),
    ]
    return udp_broadcast_frame(mac, bootp_discover(mac, xid, opts))


def _ips(value: bytes | None) -> list[str]:
    if value is None or not value or len(value) % 4:
        return []
    return [str(ipaddress.IPv4Address(value[i:i + 4])) for i in range(0, len(value), 4)]


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    return value.rstrip(b"\0").decode("latin-1")


@dataclass(frozen=True)
class DhcpMessage:
    """One DHCP message seen on the wire, with the addresses it travelled between.

    Options are kept joined per code (RFC 3396); the properties decode the ones
    site-check reports. Reading them never raises: a wrong-length option reads as absent.
    """

    src_mac: str
    src_ip: str
    dst_ip: str
    sport: int
    dport: int
    op: int
    xid: int
    flags: int
    ciaddr: str
    yiaddr: str
    siaddr: str
    giaddr: str
    chaddr: str
    sname: str
    file: str
    options: dict[int, bytes] = field(default_factory=dict)
    options_error: str | None = None

    @property
    def msg_type(self) -> int | None:
        """Option 53, or None for plain BOOTP / a malformed value."""
        v = self.options.get(53)
        return v[0] if v is not None and len(v) == 1 else None

    @property
    def server_id(self) -> str | None:
        """Option 54 (the server's own address), if well formed."""
        ips = _ips(self.options.get(54))
        return ips[0] if len(ips) == 1 else None

    @property
    def server(self) -> str:
        """Who sent it, as a DHCP client identifies servers: option 54, else the source IP."""
        return self.server_id or self.src_ip

    @property
    def vendor_class(self) -> str | None:
        """Option 60 text."""
        return _text(self.options.get(60))

    @property
    def pxeclient(self) -> bool:
        """Option 60 begins with ``PXEClient`` (servers compare the first 9 bytes)."""
        return (self.options.get(60) or b"").startswith(b"PXEClient")

    @property
    def boot_file(self) -> str:
        """The boot file: the ``file`` field, else option 67."""
        return self.file or _text(self.options.get(67)) or ""

    @property
    def has_boot_data(self) -> bool:
        """It tells a PXE client how to boot: a boot file, option 43 or a TFTP server (66)."""
        return bool(self.boot_file) or 43 in self.options or 66 in self.options

    @property
    def relayed(self) -> bool:
        """It went through a DHCP relay (giaddr set, RFC 2131 §4.1)."""
        return self.giaddr != "0.0.0.0"

    def ips(self, code: int) -> list[str]:
        """An option holding a list of IPv4 addresses (1, 3, 6, 42 …); [] if absent or bad."""
        return _ips(self.options.get(code))

    def text(self, code: int) -> str | None:
        """An option holding text (12, 15, 66, 67 …)."""
        return _text(self.options.get(code))

    def lease_seconds(self) -> int | None:
        """Option 51."""
        v = self.options.get(51)
        return struct.unpack("!I", v)[0] if v is not None and len(v) == 4 else None

    def pxe_summary(self) -> str:
        """Option 43 in a few words (its sub-option codes), for evidence lines."""
        raw = self.options.get(43)
        if raw is None:
            return ""
        codes = []
        i = 0
        while i + 1 < len(raw) and raw[i] != 255:
            if raw[i] == 0:
                i += 1
                continue
            codes.append(str(raw[i]))
            i += 2 + raw[i + 1]
        return f"43 ({len(raw)} bytes, sub-options {','.join(codes) or 'none'})"


def parse_frame(frame: bytes) -> DhcpMessage | None:
    """Read an Ethernet frame: None when it is not DHCP (not IPv4/UDP to or from port 67/68,
    or a later IP fragment); :class:`MalformedReply` when it is, but cannot be read."""
    if len(frame) < 14:
        return None
    (ethertype,) = struct.unpack("!H", frame[12:14])
    off = 14
    if ethertype == 0x8100 and len(frame) >= 18:  # one 802.1Q tag (a trunk port)
        (ethertype,) = struct.unpack("!H", frame[16:18])
        off = 18
    if ethertype != ETH_P_IP or len(frame) < off + 20:
        return None
    ver_ihl, _tos, total, _id, frag, _ttl, proto = struct.unpack(
        "!BBHHHBB", frame[off:off + 10])
    if ver_ihl >> 4 != 4 or proto != 17 or frag & 0x1FFF:
        return None
    ihl = (ver_ihl & 0x0F) * 4
    if ihl < 20 or len(frame) < off + ihl + 8:
        return None
    src_ip = str(ipaddress.IPv4Address(frame[off + 12:off + 16]))
    dst_ip = str(ipaddress.IPv4Address(frame[off + 16:off + 20]))
    udp = off + ihl
    sport, dport, udp_len = struct.unpack("!HHH", frame[udp:udp + 6])
    if not ({sport, dport} <= {SERVER_PORT, CLIENT_PORT}):
        return None
    if frag & 0x2000:
        raise MalformedReply(f"fragmented DHCP datagram from {src_ip}")
    end = min(len(frame), udp + udp_len, off + total) if udp_len >= 8 else len(frame)
    payload = frame[udp + 8:end]
    try:
        fields = parse_dhcp(payload)
    except NotDhcp:
        raise MalformedReply(f"from {src_ip}: {len(payload)}-byte payload, shorter than "
                             "a BOOTP header (236)") from None
    if not fields.magic_ok:
        raise MalformedReply(f"from {src_ip}: no DHCP magic cookie (plain BOOTP?)")
    if fields.op not in (BOOTREQUEST, BOOTREPLY):
        raise MalformedReply(f"from {src_ip}: op {fields.op} is neither request nor reply")
    if fields.options_error and not any(c == 53 for c, _ in fields.options):
        raise MalformedReply(f"from {src_ip}: {fields.options_error}")
    options: dict[int, bytes] = {}
    for code, _ in fields.options:
        if code not in options:
            options[code] = joined(fields.options, code) or b""
    return DhcpMessage(
        src_mac=mac_text(frame[6:12]), src_ip=src_ip, dst_ip=dst_ip, sport=sport, dport=dport,
        op=fields.op, xid=fields.xid, flags=fields.flags, ciaddr=fields.ciaddr,
        yiaddr=fields.yiaddr, siaddr=fields.siaddr, giaddr=fields.giaddr,
        chaddr=fields.chaddr,
        sname="" if fields.overload in (2, 3) else cstring(fields.sname_raw),
        file="" if fields.overload in (1, 3) else cstring(fields.file_raw), options=options,
        options_error=fields.options_error,
    )
