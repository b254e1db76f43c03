"""The layer-2 check: RA decoding, the RS it sends, and the check itself on loopback."""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading

import pytest

from harness.sitecheck import l2_check
from harness.sitecheck.l2_check import (
    check_l2,
    ethtool_speed,
    link_facts,
    listen_for_adverts,
    parse_router_advert,
    router_solicitation,
)
from harness.sitecheck.model import CheckVerdict, SiteCheckError, SiteCheckOptions, SiteContext

pytestmark = pytest.mark.unit
needs_root = pytest.mark.needs_root  # raw ICMPv6 sockets need CAP_NET_RAW
# the host's loopback is one medium for every worker: one test's router advertisement to
# ::1 reached another's passive listener (a fresh-clone CI run, 6 workers); in turn
loopback_icmpv6 = pytest.mark.xdist_group("host-loopback-icmpv6")


def _ra(prefix: str = "fd00:1:2:3::", plen: int = 64, lifetime: int = 1800,
        mtu: int | None = 1500, dns: str | None = "fd00::53") -> bytes:
    head = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0x40, lifetime, 0, 0)
    pio = struct.pack("!BBBBIII", 3, 4, plen, 0xC0, 86400, 14400, 0)
    pio += ipaddress.IPv6Address(prefix).packed
    opts = pio
    if mtu:
        opts += struct.pack("!BBHI", 5, 1, 0, mtu)
    if dns:
        opts += struct.pack("!BBHI", 25, 3, 0, 600) + ipaddress.IPv6Address(dns).packed
    return head + opts


def _ctx(iface: str = "lo", **kw: object) -> SiteContext:
    opts = SiteCheckOptions(iface=iface, **kw)  # type: ignore[arg-type]
    return SiteContext(options=opts, iface_mac="02:00:00:00:00:01", iface_ipv4=None)


def test_parse_router_advert_with_options() -> None:
    ra = parse_router_advert(_ra(), "fe80::1", 255)
    assert ra is not None
    assert ra.router_lifetime == 1800 and ra.other and not ra.managed
    assert ra.prefixes == ["fd00:1:2:3::/64 [LA]"] and ra.mtu == 1500 and ra.dns == ["fd00::53"]
    line = ra.describe()
    assert "RA from fe80::1" in line and "flags O" in line and "hop limit" not in line
    assert "hop limit 64" in parse_router_advert(_ra(), "fe80::1", 64).describe()


def test_ra_validity_rules() -> None:
    assert parse_router_advert(_ra(), "fe80::1", 255).problem is None
    assert "not link-local" in parse_router_advert(_ra(), "fd00::2", 255).problem
    assert "hop limit 64" in parse_router_advert(_ra(), "fe80::1", 64).problem
    assert "INVALID" in parse_router_advert(_ra(), "fd00::2", 255).describe()


def test_parse_rejects_other_types_and_survives_bad_options() -> None:
    assert parse_router_advert(b"\x87" + bytes(23), "fe80::1", 255) is None
    truncated = _ra()[:-5]
    ra = parse_router_advert(truncated, "fe80::1", 255)
    assert ra is not None and ra.prefixes  # the prefix before the cut is kept
    zero_len = _ra(mtu=None, dns=None) + bytes([5, 0, 0, 0])
    assert parse_router_advert(zero_len, "fe80::1", 255) is not None


def test_router_solicitation_bytes() -> None:
    assert router_solicitation(None) == bytes([133, 0, 0, 0, 0, 0, 0, 0])
    rs = router_solicitation("52:54:00:aa:bb:cc")
    assert rs[8:] == bytes([1, 1, 0x52, 0x54, 0, 0xAA, 0xBB, 0xCC])


def test_ethtool_on_loopback_is_not_readable() -> None:
    speed, duplex, error = ethtool_speed("lo")
    assert speed is None and duplex is None and error


def test_unknown_interface_cannot_be_checked() -> None:
    with pytest.raises(SiteCheckError, match="no interface 'nosuch0'"):
        link_facts("nosuch0")


@needs_root
@loopback_icmpv6
def test_listener_receives_an_ra_and_its_hop_limit() -> None:
    index = socket.if_nametoindex("lo")
    got: list = []
    thread = threading.Thread(target=lambda: got.append(
        listen_for_adverts("lo", index, 3.0, None, send=False)))
    thread.start()
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as tx:
            tx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
            # the listener may not be bound yet: resend until it has heard one (bounded)
            for _ in range(20):
                tx.sendto(_ra(), ("::1", 0))
                thread.join(timeout=0.1)
                if not thread.is_alive():
                    break
    finally:
        thread.join(timeout=5)
    [(adverts, note)] = got
    assert note is None and adverts
    assert adverts[0].router == "::1" and adverts[0].hop_limit == 255
    assert adverts[0].prefixes == ["fd00:1:2:3::/64 [LA]"]


@needs_root
@loopback_icmpv6
def test_check_on_loopback_reads_link_and_warns_without_ra() -> None:
    results = {r.name: r for r in check_l2(_ctx(listen_seconds=0.5, passive=True))}
    assert results["l2.link"].verdict is CheckVerdict.PASS
    assert "not readable" in " ".join(results["l2.link"].evidence)
    assert results["l2.mtu"].verdict is CheckVerdict.PASS and results["l2.mtu"].data["mtu"] >= 1500
    ra = results["l2.ipv6_ra"]
    assert ra.verdict is CheckVerdict.WARN
    assert ra.summary == ("no IPv6 router advertisement: iPXE waits for one before giving up "
                          "on IPv6")
    assert "passive mode" in " ".join(ra.evidence) and ra.data["solicited"] is False


def test_router_advertisements_that_cannot_be_listened_for_are_not_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No raw ICMPv6 socket (no CAP_NET_RAW): the RA part is INCOMPLETE with the reason, not a
    skip, so the site cannot read PASS with it unchecked; link and MTU are still judged."""
    def refused(*args: object) -> object:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(l2_check, "listen_for_adverts", refused)
    results = {r.name: r for r in check_l2(_ctx(listen_seconds=0.1, passive=True))}
    assert results["l2.link"].verdict is CheckVerdict.PASS
    ra = results["l2.ipv6_ra"]
    assert ra.verdict is CheckVerdict.INCOMPLETE
    assert "Operation not permitted" in " ".join(ra.evidence) and "CAP_NET_RAW" in ra.hint
