"""DHCP messages as a given firmware encodes them, and offers as the firmware reads them."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from harness.capture.dhcp_codec import NotDhcp, cstring, decode_pxe, joined, parse_dhcp
from harness.machines.sim.profiles import FirmwareProfile
from harness.macs import mac_bytes

MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6
BOOTP_MIN = 300


@dataclass(frozen=True)
class ClientIdentity:
    """Who the machine is on the wire: its MAC and SMBIOS UUID (16 bytes, as sent in 97)."""

    mac: str
    uuid: bytes


def _opt(code: int, value: bytes) -> bytes:
    return bytes([code, len(value)]) + value


def profile_options(profile: FirmwareProfile, ident: ClientIdentity) -> dict[int, bytes]:
    """The identifying options this firmware sends in every request, keyed by code."""
    out: dict[int, bytes] = {
        57: struct.pack("!H", profile.max_msg_size),
        55: profile.param_list,
        94: profile.nii,
        93: struct.pack("!H", profile.arch),
        60: profile.vendor_class,
        61: b"\x01" + mac_bytes(ident.mac),
    }
    if profile.send_uuid:
        out[97] = b"\x00" + ident.uuid
    if profile.user_class is not None:
        out[77] = profile.user_class
    if profile.ipxe_features is not None:
        out[175] = profile.ipxe_features
    return out


def client_message(
    profile: FirmwareProfile,
    ident: ClientIdentity,
    msg_type: int,
    xid: int,
    *,
    secs: int = 0,
    ciaddr: str = "0.0.0.0",
    requested_ip: str | None = None,
    server_id: str | None = None,
    boot_item: tuple[int, int] | None = None,
    pxebs_server: str | None = None,
) -> bytes:
    """A DHCPDISCOVER/REQUEST payload with this firmware's options, in its order.

    ``pxebs_server`` (the boot server's address) makes it the request sent to
    UDP 4011, ``boot_item`` adds option 43.71 to it; ``requested_ip``/``server_id``
    make it the REQUEST of a lease.
    """
    pxebs = pxebs_server is not None or boot_item is not None
    flags = 0x8000 if profile.broadcast_flag and ciaddr == "0.0.0.0" else 0
    if pxebs and profile.pxebs_broadcast:
        flags = 0x8000
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, secs, flags,
                       ipaddress.IPv4Address(ciaddr).packed, b"\0" * 4, b"\0" * 4, b"\0" * 4,
                       mac_bytes(ident.mac), b"", b"")
    body = bytearray(MAGIC)
    body += _opt(53, bytes([msg_type]))
    if server_id is not None:
        body += _opt(54, ipaddress.IPv4Address(server_id).packed)
    if requested_ip is not None:
        body += _opt(50, ipaddress.IPv4Address(requested_ip).packed)
    opts = profile_options(profile, ident)
    if boot_item is not None and profile.is_ipxe:
        opts[60] = b"PXEClient"  # iPXE's boot-server request names only the class
    order = profile.pxebs_order if pxebs and profile.pxebs_order else profile.option_order
    for code in order:
        if code in opts:
            body += _opt(code, opts[code])
    # iPXE's ProxyDHCP request names the proxy; its boot-server request (43.71) does not
    if pxebs and profile.pxebs_server_id and pxebs_server is not None and boot_item is None:
        body += _opt(54, ipaddress.IPv4Address(pxebs_server).packed)
    if boot_item is not None:
        item = struct.pack("!HH", *boot_item)
        body += _opt(43, _opt(71, item) + b"\xff")
    body += b"\xff"
    payload = head + bytes(body)
    if len(payload) < BOOTP_MIN:
        payload += b"\0" * (BOOTP_MIN - len(payload))
    return payload


@dataclass(frozen=True)
class Offer:
    """A server reply (OFFER or ACK) as the firmware sees it."""

    msg_type: int
    xid: int
    chaddr: str
    src_ip: str
    sport: int
    server_id: str | None
    yiaddr: str
    siaddr: str
    file: str
    vendor_class: str | None
    boot_menu: tuple[tuple[int, str], ...]
    discovery_control: int | None
    boot_item: tuple[int, int] | None
    netmask: str | None
    received_at: float = 0.0
    router: str | None = None
    ntp_servers: tuple[str, ...] = ()   # option 42, as the OS's DHCP client would read it

    @property
    def is_proxy(self) -> bool:
        """A ProxyDHCP reply: no address (OFFER-2)."""
        return self.yiaddr == "0.0.0.0"

    @property
    def is_pxe(self) -> bool:
        """Carries PXE/HTTP boot information: option 60 of a boot server (OFFER-3)."""
        vc = self.vendor_class or ""
        return vc.startswith(("PXEClient", "HTTPClient", "HW-Client"))

    @property
    def boot_server(self) -> str:
        """Where to send the 4011 request: siaddr if set, else option 54, else the sender."""
        if self.siaddr != "0.0.0.0":
            return self.siaddr
        return self.server_id or self.src_ip

    def to_json(self) -> dict[str, object]:
        """A JSON-friendly summary for the timeline."""
        return {"server_id": self.server_id, "src_ip": self.src_ip, "yiaddr": self.yiaddr,
                "siaddr": self.siaddr, "file": self.file, "vendor_class": self.vendor_class,
                "proxy": self.is_proxy, "pxe": self.is_pxe,
                "boot_menu": [list(m) for m in self.boot_menu]}


def _menu(raw: bytes | None) -> tuple[tuple[int, str], ...]:
    out: list[tuple[int, str]] = []
    i = 0
    while raw is not None and i + 3 <= len(raw):
        kind, length = struct.unpack("!HB", raw[i : i + 3])
        out.append((kind, raw[i + 3 : i + 3 + length].decode("latin-1")))
        i += 3 + length
    return tuple(out)


def parse_reply(payload: bytes, src_ip: str, sport: int, now: float) -> Offer | None:
    """Parse a server reply; None if it is not a BOOTREPLY DHCP message."""
    try:
        f = parse_dhcp(payload)
    except NotDhcp:
        return None
    if f.op != 2 or not f.magic_ok:
        return None
    mt = joined(f.options, 53)
    if not mt:
        return None
    vc = joined(f.options, 60)
    sid = joined(f.options, 54)
    mask = joined(f.options, 1)
    router = joined(f.options, 3)
    ntp = joined(f.options, 42) or b""
    file = cstring(f.file_raw) if f.overload not in (1, 3) else ""
    opt67 = joined(f.options, 67)
    if not file and opt67:
        file = opt67.rstrip(b"\0").decode("latin-1")
    menu: tuple[tuple[int, str], ...] = ()
    control = None
    item = None
    raw43 = joined(f.options, 43)
    if raw43 is not None:
        pxe = decode_pxe(raw43)
        menu = _menu(pxe.get(9))
        control = pxe.discovery_control
        item = pxe.boot_item
    return Offer(
        msg_type=mt[0], xid=f.xid, chaddr=f.chaddr, src_ip=src_ip, sport=sport,
        server_id=str(ipaddress.IPv4Address(sid)) if sid and len(sid) == 4 else None,
        yiaddr=f.yiaddr, siaddr=f.siaddr, file=file,
        vendor_class=None if vc is None else vc.decode("latin-1"),
        boot_menu=menu, discovery_control=control, boot_item=item,
        netmask=str(ipaddress.IPv4Address(mask)) if mask and len(mask) == 4 else None,
        received_at=now,
        router=str(ipaddress.IPv4Address(router[:4])) if router and len(router) >= 4 else None,
        ntp_servers=tuple(str(ipaddress.IPv4Address(ntp[i:i + 4]))
                          for i in range(0, len(ntp) - len(ntp) % 4, 4)),
    )
