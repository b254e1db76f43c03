"""Conformant synthetic boot exchanges, each with knobs to inject one defect.

Every packet a flow emits has a role name ("proxy_offer", "ack4011", ...).
A test passes ``tweaks={role: fn}``; ``fn`` edits the packet spec in place
(or returns False to drop the packet), so a defect is one line of test code
and the rest of the exchange stays conformant.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.capture.synth import (
    BROADCAST,
    Host,
    PcapBuilder,
    dhcp_payload,
    ip4,
    pxe43,
    pxe_vendor_class,
)


@dataclass
class Spec:
    """One DHCP packet before encoding; tweaks edit it."""

    src: Host
    dst: Host
    sport: int
    dport: int
    op: int
    xid: int
    chaddr: str
    options: list[tuple[int, bytes]]
    kw: dict[str, Any] = field(default_factory=dict)

    def set_option(self, code: int, value: bytes | None) -> None:
        """Replace option ``code`` in place (keeping its position), add it, or drop it (None)."""
        for i, (c, _) in enumerate(self.options):
            if c == code:
                if value is None:
                    del self.options[i]
                else:
                    self.options[i] = (code, value)
                return
        if value is not None:
            self.options.append((code, value))


@dataclass
class UdpSpec:
    """One non-DHCP UDP packet (TFTP) before it is written; tweaks edit it."""

    src: Host
    dst: Host
    sport: int
    dport: int
    payload: bytes


Tweak = Callable[[Any], "bool | None"]


@dataclass(frozen=True)
class Client:
    """A simulated firmware client."""

    mac: str = "52:54:00:00:00:11"
    ip: str = "10.0.0.50"
    arch: int = 0
    undi: str = "002001"
    vendor_prefix: str = "PXEClient"
    ipxe: bool = False
    uuid: bytes = uuidlib.UUID("6b8f2c4e-1a2b-4c3d-9e8f-001122334455").bytes
    xid: int = 0x1A2B3C4D

    @property
    def vendor_class(self) -> bytes:
        """Option 60 this client sends."""
        return pxe_vendor_class(self.arch, self.undi, self.vendor_prefix)


SITE_DHCP = Host("02:00:00:00:00:01", "10.0.0.1")
PROXY = Host("02:00:00:00:00:02", "10.0.0.2")
RELAY = Host("02:00:00:00:00:03", "10.1.0.1")


@dataclass(frozen=True)
class Site:
    """Who is on the segment: the site DHCP server, the proxy, an optional relay."""

    dhcp: Host = SITE_DHCP
    proxy: Host = PROXY
    relay: Host = RELAY
    tftp_port: int = 40001


def proxy_offer_options(c: Client, proxy: Host, shape: str = "a") -> list[tuple[int, bytes]]:
    """The options of a ProxyDHCP OFFER from ``proxy`` to ``c``, direct or through a relay.

    Option 60 echoes PXEClient (or HTTPClient); shape 'a' adds option 43 with discovery
    control bit 3 (boot from the header's file) for a PXEClient, shape 'c' does not.
    """
    vc = b"HTTPClient" if c.vendor_prefix == "HTTPClient" else b"PXEClient"
    opts: list[tuple[int, bytes]] = [
        (53, b"\x02"),
        (54, ip4(proxy.ip)),
        (60, vc),
        (97, b"\x00" + c.uuid),
    ]
    if shape == "a" and vc == b"PXEClient":
        opts.append((43, pxe43([(6, b"\x08")])))
    return opts


class Flow:
    """Emit a boot exchange into a PcapBuilder, applying per-role tweaks."""

    def __init__(
        self,
        builder: PcapBuilder | None = None,
        site: Site | None = None,
        tweaks: dict[str, Tweak] | None = None,
    ) -> None:
        self.b = builder or PcapBuilder()
        self.site = site or Site()
        self.tweaks = tweaks or {}

    def emit(self, role: str, spec: Spec, dt: float = 0.01) -> int | None:
        """Apply the tweak for ``role`` and write the packet; None when dropped."""
        tweak = self.tweaks.get(role)
        if tweak is not None and tweak(spec) is False:
            return None
        payload = dhcp_payload(spec.op, spec.xid, spec.chaddr, spec.options, **spec.kw)
        return self.b.udp(spec.src, spec.dst, spec.sport, spec.dport, payload, dt)

    # -- client side -------------------------------------------------------
    def client_options(self, c: Client, msg: int, extra: list[tuple[int, bytes]]) -> list:
        """Options a PXE ROM (or iPXE) puts in DISCOVER/REQUEST, in its order."""
        opts: list[tuple[int, bytes]] = [(53, bytes([msg])), (57, b"\x05\xc0")]
        opts += extra
        opts += [
            (55, bytes([1, 3, 6, 43, 60, 66, 67, 97])),
            (93, c.arch.to_bytes(2, "big")),
            (94, b"\x01\x02\x01"),
            (97, b"\x00" + c.uuid),
            (60, c.vendor_class),
        ]
        if c.ipxe:
            opts += [(77, b"iPXE"), (175, b"\xb1\x05\x01\x01\x01\x08\x01")]
        return opts

    def discover(self, c: Client, role: str = "discover", dt: float = 0.01) -> int | None:
        """Broadcast DHCPDISCOVER from the client."""
        src = Host(c.mac, "0.0.0.0")
        spec = Spec(src, BROADCAST, 68, 67, 1, c.xid, c.mac, self.client_options(c, 1, []))
        spec.kw["flags"] = 0x8000 if c.ipxe else 0
        return self.emit(role, spec, dt)

    # -- server side -------------------------------------------------------
    def site_offer(self, c: Client, role: str = "site_offer") -> int | None:
        """The site DHCP server offers an address (no boot information)."""
        s = self.site.dhcp
        opts = [
            (53, b"\x02"),
            (54, ip4(s.ip)),
            (51, (3600).to_bytes(4, "big")),
            (1, ip4("255.255.255.0")),
            (3, ip4(s.ip)),
        ]
        spec = Spec(s, BROADCAST, 67, 68, 2, c.xid, c.mac, opts, {"yiaddr": c.ip, "flags": 0x8000})
        return self.emit(role, spec)

    def site_request_ack(self, c: Client) -> None:
        """Client REQUESTs the site's offer; the site ACKs it."""
        src = Host(c.mac, "0.0.0.0")
        extra = [(50, ip4(c.ip)), (54, ip4(self.site.dhcp.ip))]
        spec = Spec(src, BROADCAST, 68, 67, 1, c.xid, c.mac, self.client_options(c, 3, extra))
        self.emit("site_request", spec)
        s = self.site.dhcp
        opts = [(53, b"\x05"), (54, ip4(s.ip)), (51, (3600).to_bytes(4, "big"))]
        ack = Spec(s, BROADCAST, 67, 68, 2, c.xid, c.mac, opts, {"yiaddr": c.ip, "flags": 0x8000})
        self.emit("site_ack", ack)

    def proxy_offer(
        self, c: Client, shape: str, file: str = "", role: str = "proxy_offer"
    ) -> int | None:
        """ProxyDHCP OFFER; shape 'a' (43.6 bit 3 + siaddr + file) or 'c' (use 4011)."""
        p = self.site.proxy
        kw: dict[str, Any] = {"flags": 0x8000, "siaddr": p.ip}
        if shape == "a":
            kw["file"] = file.encode()
        spec = Spec(p, BROADCAST, 67, 68, 2, c.xid, c.mac, proxy_offer_options(c, p, shape), kw)
        return self.emit(role, spec, dt=0.05)

    def proxied_lease(self, c: Client, shape: str, file: str = "") -> None:
        """How every proxied boot starts: DISCOVER, the site's OFFER, the proxy's OFFER
        (``shape`` and ``file`` as :meth:`proxy_offer`), then the site's REQUEST/ACK."""
        self.discover(c)
        self.site_offer(c)
        self.proxy_offer(c, shape, file)
        self.site_request_ack(c)

    def pxe_4011(self, c: Client, file: str, sport: int, boot_item: bool = True) -> None:
        """Client REQUEST to proxy:4011 (from ``sport``) and the proxy's ACK."""
        p = self.site.proxy
        me = Host(c.mac, c.ip)
        extra: list[tuple[int, bytes]] = []
        if boot_item:
            extra.append((43, pxe43([(71, b"\x00\x00\x00\x00")])))
        spec = Spec(me, p, sport, 4011, 1, c.xid + 1, c.mac, self.client_options(c, 3, extra))
        spec.kw["ciaddr"] = c.ip
        self.emit("request4011", spec, dt=0.3)
        opts: list[tuple[int, bytes]] = [
            (53, b"\x05"),
            (54, ip4(p.ip)),
            (60, b"PXEClient"),
            (97, b"\x00" + c.uuid),
        ]
        if boot_item:
            opts.append((43, pxe43([(71, b"\x00\x00\x00\x00")])))
        ack = Spec(
            p, me, 4011, sport, 2, c.xid + 1, c.mac, opts, {"siaddr": p.ip, "file": file.encode()}
        )
        self.emit("ack4011", ack)

    # -- file transfer -----------------------------------------------------
    def tftp(self, c: Client, filename: str, size: int = 3000, blksize: int = 1432) -> None:
        """RRQ with tsize/blksize, OACK, then DATA/ACK to the end."""
        p, me = self.site.proxy, Host(c.mac, c.ip)
        cport, sport = 2070, self.site.tftp_port
        req = b"\x00\x01" + filename.encode() + b"\x00octet\x00tsize\x000\x00blksize\x00"
        req += str(blksize).encode() + b"\x00"
        self._tftp_emit("tftp_rrq", me, p, cport, 69, req)
        oack = b"\x00\x06tsize\x00" + str(size).encode() + b"\x00blksize\x00"
        oack += str(blksize).encode() + b"\x00"
        self._tftp_emit("tftp_oack", p, me, sport, cport, oack)
        self._tftp_emit("tftp_ack0", me, p, cport, sport, b"\x00\x04\x00\x00")
        block, sent = 1, 0
        while True:
            n = min(blksize, size - sent)
            data = b"\x00\x03" + block.to_bytes(2, "big") + bytes(n)
            self._tftp_emit(f"tftp_data{block}", p, me, sport, cport, data)
            self._tftp_emit(
                f"tftp_ack{block}", me, p, cport, sport, b"\x00\x04" + block.to_bytes(2, "big")
            )
            sent += n
            if n < blksize:
                break
            block += 1

    def _tftp_emit(
        self,
        role: str,
        src: Host,
        dst: Host,
        sport: int,
        dport: int,
        payload: bytes,
    ) -> None:
        spec = UdpSpec(src, dst, sport, dport, payload)
        tweak = self.tweaks.get(role)
        if tweak is not None and tweak(spec) is False:
            return
        dt = 0.2 if role == "tftp_rrq" else 0.005
        self.b.udp(spec.src, spec.dst, spec.sport, spec.dport, spec.payload, dt)

    def http_get(self, c: Client, path: str, method: str = "GET", status: int = 200) -> None:
        """One HTTP request and the start of its response."""
        p, me = self.site.proxy, Host(c.mac, c.ip)
        req = f"{method} {path} HTTP/1.1\r\nHost: {p.ip}\r\nUser-Agent: iPXE/1.0\r\n\r\n"
        self.b.tcp(me, p, 49152, 80, req.encode(), dt=0.1)
        reason = "OK" if status == 200 else "Not Found"
        resp = f"HTTP/1.1 {status} {reason}\r\nContent-Length: 10\r\n\r\n0123456789"
        self.b.tcp(p, me, 80, 49152, resp.encode())


# -- whole exchanges, one per client type ------------------------------------

BIOS = Client()
UEFI = Client(mac="52:54:00:00:00:22", ip="10.0.0.51", arch=7, undi="003016", xid=0x22222222)
HTTPBOOT = Client(
    mac="52:54:00:00:00:33",
    ip="10.0.0.52",
    arch=16,
    undi="003016",
    vendor_prefix="HTTPClient",
    xid=0x33333333,
)
IPXE = Client(mac="52:54:00:00:00:44", ip="10.0.0.53", arch=0, ipxe=True, xid=0x44444444)


def bios_flow(f: Flow, c: Client = BIOS) -> None:
    """PXE ROM: offer shape (a) with undionly.kpxe, then TFTP."""
    f.proxied_lease(c, "a", "undionly.kpxe")
    f.tftp(c, "undionly.kpxe")


def uefi_flow(f: Flow, c: Client = UEFI) -> None:
    """EDK2 PXE: offer without 43 (shape c), 4011 request from port 4011, TFTP."""
    f.proxied_lease(c, "c")
    f.pxe_4011(c, "ipxe.efi", sport=4011)
    f.tftp(c, "ipxe.efi", size=2864)


def http_flow(f: Flow, c: Client = HTTPBOOT) -> None:
    """EDK2 HTTP boot: HTTPClient offer with an absolute URL, then GET."""
    f.proxied_lease(c, "a", f"http://{f.site.proxy.ip}/ipxe.efi")
    f.http_get(c, "/ipxe.efi", "HEAD")
    f.http_get(c, "/ipxe.efi")


def ipxe_flow(f: Flow, c: Client = IPXE) -> None:
    """iPXE after chainload: user-class iPXE gets the script URL, then HTTP."""
    f.proxied_lease(c, "a", f"http://{f.site.proxy.ip}/boot/{c.mac}.ipxe")
    f.http_get(c, f"/boot/{c.mac}.ipxe")
    f.http_get(c, "/images/vmlinuz")


def relayed_flow(f: Flow, c: Client | None = None) -> None:
    """A client behind a relay: DISCOVER relayed with giaddr and option 82."""
    c = c or Client(mac="52:54:00:00:00:55", ip="10.1.0.50", xid=0x55555555)
    relay, p = f.site.relay, f.site.proxy
    opt82 = b"\x01\x04port\x02\x06switch"
    opts = [*f.client_options(c, 1, []), (82, opt82)]
    spec = Spec(relay, p, 67, 67, 1, c.xid, c.mac, opts, {"giaddr": relay.ip, "hops": 1})
    f.emit("discover", spec)
    reply = [*proxy_offer_options(c, p), (82, opt82)]
    kw = {"giaddr": relay.ip, "flags": 0x8000, "siaddr": p.ip, "file": b"undionly.kpxe"}
    f.emit("proxy_offer", Spec(p, relay, 67, 67, 2, c.xid, c.mac, reply, kw), dt=0.05)
    f.tftp(c, "undionly.kpxe")


ALL_FLOWS: dict[str, Callable[[Flow], None]] = {
    "bios": bios_flow,
    "uefi": uefi_flow,
    "http": http_flow,
    "ipxe": ipxe_flow,
    "relayed": relayed_flow,
}
