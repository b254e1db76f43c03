"""Requirement 7: layer-2 basics — link up, MTU, speed/duplex, IPv6 router advertisements.

Everything is read through sockets, never through /sys/class/net: sysfs shows the network
namespace it was mounted in, so under ``nsenter --net`` (how the lab runs site-check, and
how a site engineer may run it in a container) it describes the *host's* interfaces.
Netlink (pyroute2) and the SIOCETHTOOL ioctl act in the caller's own namespace.

The RA test matters because iPXE waits for an IPv6 router advertisement before it gives
up on IPv6 (~16 s per boot on a segment without one, measured in MACHINE-NOTES.md). It
listens on the interface, and unless ``--passive`` sends one Router Solicitation to
ff02::2 (RFC 4861 §6.3.7) so a router answers at once instead of in minutes.
"""

from __future__ import annotations

import array
import fcntl
import ipaddress
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import IPRoute

from harness.macs import mac_bytes
from harness.sitecheck.model import CheckResult, CheckVerdict, SiteCheckError, SiteContext

MIN_MTU = 1500
SIOCETHTOOL = 0x8946
ETHTOOL_GSET = 0x00000001
ICMP6_FILTER = 1          # <netinet/icmp6.h>; not exported by the socket module
ND_ROUTER_SOLICIT = 133
ND_ROUTER_ADVERT = 134
IFA_F_TENTATIVE = 0x40
_SPEED_UNKNOWN = 0xFFFFFFFF
# after the first RA, wait this much longer for other routers, then stop listening
_MORE_ROUTERS_WINDOW = 1.0


@dataclass
class LinkFacts:
    """What netlink and ethtool say about one interface."""

    index: int
    mtu: int
    operstate: str
    carrier: int | None
    speed_mbps: int | None = None
    duplex: str | None = None
    ethtool_error: str | None = None
    link_local: list[str] = field(default_factory=list)   # usable (non-tentative) fe80::
    ipv6_addresses: int = 0
    mac: str | None = None


def ethtool_speed(iface: str) -> tuple[int | None, str | None, str | None]:
    """(speed in Mb/s, "full"/"half", error) via the legacy ETHTOOL_GSET ioctl (still
    answered by every driver that implements link settings, veth included)."""
    # struct ethtool_cmd is 44 bytes; speed at 12 (u16), duplex at 14, speed_hi at 28
    buf = array.array("B", struct.pack("I", ETHTOOL_GSET) + bytes(40))
    addr, _ = buf.buffer_info()
    ifreq = struct.pack("16sP", iface.encode()[:15], addr)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
        except OSError as exc:
            return None, None, exc.strerror or str(exc)
    raw = bytes(buf)
    speed = struct.unpack_from("H", raw, 12)[0] | (struct.unpack_from("H", raw, 28)[0] << 16)
    duplex_code = raw[14]
    duplex = {0: "half", 1: "full"}.get(duplex_code)
    return (None if speed in (_SPEED_UNKNOWN, 0xFFFF, 0) else speed), duplex, None


def link_facts(iface: str) -> LinkFacts:
    """Netlink facts of ``iface`` in the caller's namespace; SiteCheckError when absent."""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=iface)
        if not found:
            names = sorted(str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links())
            raise SiteCheckError(f"no interface {iface!r} in this network namespace "
                                 f"(have: {', '.join(names)})")
        index = found[0]
        link = ipr.get_links(index)[0]
        facts = LinkFacts(index=index, mtu=int(link.get_attr("IFLA_MTU") or 0),
                          operstate=str(link.get_attr("IFLA_OPERSTATE") or "UNKNOWN"),
                          carrier=link.get_attr("IFLA_CARRIER"),
                          mac=link.get_attr("IFLA_ADDRESS"))
        for msg in ipr.get_addr(family=socket.AF_INET6, index=index):
            facts.ipv6_addresses += 1
            addr = msg.get_attr("IFA_ADDRESS")
            flags = msg.get_attr("IFA_FLAGS") or msg["flags"]
            if addr and addr.startswith("fe80:") and not flags & IFA_F_TENTATIVE:
                facts.link_local.append(addr)
    facts.speed_mbps, facts.duplex, facts.ethtool_error = ethtool_speed(iface)
    return facts


@dataclass
class RouterAdvert:
    """One Router Advertisement as received."""

    router: str
    hop_limit: int | None
    router_lifetime: int
    managed: bool
    other: bool
    prefixes: list[str]
    mtu: int | None = None
    dns: list[str] = field(default_factory=list)

    @property
    def problem(self) -> str | None:
        """Why hosts must ignore this RA (RFC 4861 §6.1.2), or None when it is valid."""
        if not self.router.lower().startswith("fe80:"):
            return "source is not link-local: hosts must ignore it"
        if self.hop_limit is not None and self.hop_limit != 255:
            return f"hop limit {self.hop_limit}, not 255: hosts must ignore it"
        return None

    def describe(self) -> str:
        """One evidence line."""
        flags = "".join(f for f, on in (("M", self.managed), ("O", self.other)) if on) or "-"
        parts = [f"RA from {self.router}", f"flags {flags}",
                 f"router lifetime {self.router_lifetime} s",
                 "prefixes " + (", ".join(self.prefixes) or "none")]
        if self.mtu:
            parts.append(f"MTU {self.mtu}")
        if self.dns:
            parts.append("RDNSS " + ", ".join(self.dns))
        if self.problem:
            parts.append(f"INVALID ({self.problem})")
        return "; ".join(parts)


def parse_router_advert(data: bytes, router: str, hop_limit: int | None) -> RouterAdvert | None:
    """Decode an ICMPv6 RA (RFC 4861 §4.2) with its prefix, MTU and RDNSS options."""
    if len(data) < 16 or data[0] != ND_ROUTER_ADVERT or data[1] != 0:
        return None
    flags = data[5]
    ra = RouterAdvert(router=router, hop_limit=hop_limit,
                      router_lifetime=struct.unpack_from("!H", data, 6)[0],
                      managed=bool(flags & 0x80), other=bool(flags & 0x40), prefixes=[])
    pos = 16
    while pos + 2 <= len(data):
        kind, length = data[pos], data[pos + 1] * 8
        if length == 0 or pos + length > len(data):
            break  # malformed: stop, keep what was read
        body = data[pos:pos + length]
        if kind == 3 and length == 32:
            plen = body[2]
            prefix = ipaddress.IPv6Address(body[16:32])
            auto = "A" if body[3] & 0x40 else ""
            onlink = "L" if body[3] & 0x80 else ""
            ra.prefixes.append(f"{prefix}/{plen}" + (f" [{onlink}{auto}]" if onlink or auto
                                                    else ""))
        elif kind == 5 and length == 8:
            ra.mtu = struct.unpack_from("!I", body, 4)[0]
        elif kind == 25 and length >= 24:
            ra.dns += [str(ipaddress.IPv6Address(body[i:i + 16]))
                       for i in range(8, length - 15, 16)]
        pos += length
    return ra


def _ra_socket(iface: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        # pass only RAs up to us (a bit set in icmp6_filter blocks that type)
        words = [0xFFFFFFFF] * 8
        words[ND_ROUTER_ADVERT >> 5] &= ~(1 << (ND_ROUTER_ADVERT & 31))
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("8I", *words))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def router_solicitation(mac: str | None) -> bytes:
    """An RS; with the source link-layer address option only when a source address will be
    set (RFC 4861 §4.1: never with the unspecified source)."""
    msg = struct.pack("!BBHI", ND_ROUTER_SOLICIT, 0, 0, 0)  # the kernel fills the checksum
    if mac:
        msg += bytes([1, 1]) + mac_bytes(mac)
    return msg


def listen_for_adverts(iface: str, index: int, seconds: float, solicit_from: str | None,
                       send: bool) -> tuple[list[RouterAdvert], str | None]:
    """Listen on ``iface`` for up to ``seconds`` (stopping ~1 s after the first valid RA), after
    sending one RS when ``send``; returns the RAs and a note if the RS could not be sent."""
    adverts: list[RouterAdvert] = []
    note = None
    with _ra_socket(iface) as sock:
        if send:
            try:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
                sock.sendto(router_solicitation(solicit_from), ("ff02::2", 0, 0, index))
            except OSError as exc:
                note = f"could not send the Router Solicitation: {exc.strerror or exc}"
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                data, anc, _, peer = sock.recvmsg(2048, socket.CMSG_SPACE(4))
            except TimeoutError:
                break
            hop = None
            for level, kind, value in anc:
                if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT:
                    hop = struct.unpack("i", value[:4])[0]
            ra = parse_router_advert(data, str(peer[0]).split("%")[0], hop)
            if ra is not None:
                if ra.problem is None and not any(a.problem is None for a in adverts):
                    deadline = min(deadline, time.monotonic() + _MORE_ROUTERS_WINDOW)
                adverts.append(ra)
    return adverts, note


def _link_results(iface: str, facts: LinkFacts) -> list[CheckResult]:
    speed = (f"{facts.speed_mbps} Mb/s" if facts.speed_mbps else "speed unknown")
    duplex = facts.duplex or "duplex unknown"
    if facts.ethtool_error:
        speed_line = f"speed/duplex not readable ({facts.ethtool_error})"
    else:
        speed_line = f"{speed}, {duplex} duplex" if facts.duplex else f"{speed}, {duplex}"
    evidence = [f"{iface}: operstate {facts.operstate}, carrier {facts.carrier}", speed_line]
    data: dict[str, Any] = {"operstate": facts.operstate, "carrier": facts.carrier,
                            "speed_mbps": facts.speed_mbps, "duplex": facts.duplex}
    down = facts.carrier == 0 or facts.operstate in ("DOWN", "LOWERLAYERDOWN", "NOTPRESENT")
    if down:
        link = CheckResult("l2", "l2.link", CheckVerdict.FAIL,
                           f"{iface} is down (operstate {facts.operstate}, carrier "
                           f"{facts.carrier})", evidence, data=data,
                           hint="plug the cable / enable the switch port, and `ip link set "
                                f"{iface} up`")
    elif facts.duplex == "half":
        link = CheckResult("l2", "l2.link", CheckVerdict.WARN, f"{iface} is up but half duplex",
                           evidence, data=data,
                           hint="half duplex usually means an autonegotiation mismatch with "
                                "the switch port: set both to auto")
    else:
        link = CheckResult("l2", "l2.link", CheckVerdict.PASS, f"{iface} is up ({speed_line})",
                           evidence, data=data)
    mtu_ev = [f"{iface}: MTU {facts.mtu}"]
    if facts.mtu < MIN_MTU:
        mtu = CheckResult("l2", "l2.mtu", CheckVerdict.WARN, f"MTU {facts.mtu} < {MIN_MTU}",
                          mtu_ev, data={"mtu": facts.mtu},
                          hint="PXE ROMs, TFTP and node images assume a 1500-byte MTU: "
                               "raise it on the segment (or check for an overlay eating it)")
    else:
        mtu = CheckResult("l2", "l2.mtu", CheckVerdict.PASS, f"MTU {facts.mtu}", mtu_ev,
                          data={"mtu": facts.mtu})
    return [link, mtu]


def _ra_result(ctx: SiteContext, facts: LinkFacts, down: bool) -> CheckResult:
    iface = ctx.options.iface
    if down:
        return CheckResult("l2", "l2.ipv6_ra", CheckVerdict.SKIP, "link down: nothing to listen to")
    passive = ctx.options.passive
    seconds = ctx.options.listen_seconds
    evidence = []
    if facts.ipv6_addresses == 0:
        evidence.append(f"{iface} has no IPv6 address (IPv6 disabled here?): listening only")
    source = facts.link_local[0] if facts.link_local else None
    send = not passive and facts.ipv6_addresses > 0
    # the MAC from netlink, not ctx.iface_mac: see the module docstring about sysfs
    adverts, note = listen_for_adverts(iface, facts.index, seconds,
                                       facts.mac if source else None, send)
    if send:
        evidence.append("sent one Router Solicitation to ff02::2 from " + (
            source or "the address the kernel chose (no link-local address is usable yet)"))
    if note:
        evidence.append(note)
    evidence.append(f"listened on {iface} for up to {seconds:g} s: {len(adverts)} RA(s)")
    counts: dict[str, int] = {}
    for ra in adverts:   # a router answering the RS and also advertising: one line, counted
        line = ra.describe()
        counts[line] = counts.get(line, 0) + 1
    evidence += [line + (f" (x{n})" if n > 1 else "") for line, n in counts.items()]
    valid = [ra for ra in adverts if ra.problem is None]
    routers = sorted({ra.router for ra in valid})
    data: dict[str, Any] = {"routers": routers,
                            "prefixes": sorted({p for ra in valid for p in ra.prefixes}),
                            "invalid": sorted({ra.router for ra in adverts if ra.problem}),
                            "solicited": send}
    if valid:
        return CheckResult("l2", "l2.ipv6_ra", CheckVerdict.PASS,
                           f"IPv6 router advertisement from {', '.join(routers)}",
                           evidence, data=data)
    summary = "no IPv6 router advertisement: iPXE waits for one before giving up on IPv6"
    if adverts:
        summary = (f"only invalid IPv6 router advertisements (from {', '.join(data['invalid'])})"
                   ": iPXE ignores them and waits before giving up on IPv6")
    if passive:
        evidence.append("passive mode: no solicitation sent, and routers advertise "
                        "unsolicited only every few minutes; run without --passive to be sure")
    return CheckResult("l2", "l2.ipv6_ra", CheckVerdict.WARN, summary, evidence, data=data,
                       hint="have a router (or the site DHCP server, e.g. dnsmasq enable-ra "
                            "with an ra-only range) advertise on this segment, or expect "
                            "each iPXE boot to stall ~16 s")


def check_l2(ctx: SiteContext) -> list[CheckResult]:
    """Link state, speed/duplex, MTU and IPv6 RA presence on ``options.iface``."""
    iface = ctx.options.iface
    try:
        facts = link_facts(iface)
    except OSError as exc:
        raise SiteCheckError(f"cannot read {iface} over netlink: {exc}") from exc
    results = _link_results(iface, facts)
    down = results[0].verdict is CheckVerdict.FAIL
    try:
        results.append(_ra_result(ctx, facts, down))
    except PermissionError as exc:
        results.append(CheckResult(
            "l2", "l2.ipv6_ra", CheckVerdict.INCOMPLETE,
            "could not listen for router advertisements",
            [f"raw ICMPv6 socket: {exc}"], hint="run as root or with CAP_NET_RAW"))
    return results
