"""The probes' packet socket on real veths: the kernel filter lets DHCP through and
nothing else, and the socket hears only its own interface."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.lab import Host, HostLink, Lab, Segment, Topology
from harness.lab.nsthread import NamespaceWorker
from harness.sitecheck.dhcp_link import PacketLink
from harness.sitecheck.dhcp_wire import (
    BROADCAST_MAC,
    parse_frame,
    plain_discover_frame,
    udp_frame,
)
from harness.sitecheck.model import SiteCheckError

pytestmark = pytest.mark.sim

TOPOLOGY = Topology(
    segments=(Segment("lan"), Segment("other")),
    hosts=(Host("talker", (HostLink("lan"), HostLink("other"))),
           Host("check", (HostLink("lan"), HostLink("other")))),
)


def test_only_dhcp_on_the_bound_interface_reaches_the_probe(
        make_lab: Callable[[Topology], Lab]) -> None:
    lab = make_lab(TOPOLOGY)
    talker_lan = lab.link("talker", "lan")
    talker_other = lab.link("talker", "other")
    dns = udp_frame(talker_lan.mac, BROADCAST_MAC, "0.0.0.0", "255.255.255.255", 5353, 53,
                    b"not dhcp" * 40)
    wrong_iface = plain_discover_frame(talker_other.mac, 0x0BAD)
    wanted = plain_discover_frame(talker_lan.mac, 0x600D)

    with NamespaceWorker(lab.ns("check")) as checker, \
            NamespaceWorker(lab.ns("talker")) as talker:
        link = checker.call(PacketLink, lab.link("check", "lan").host_iface)
        try:
            for iface, frame in ((talker_lan.host_iface, dns),
                                 (talker_other.host_iface, wrong_iface),
                                 (talker_lan.host_iface, wanted)):
                talker.call(_send, iface, frame)
            got = checker.call(link.receive, 3.0)
            after = checker.call(link.receive, 0.3)
        finally:
            checker.call(link.close)
    assert got is not None, "the DHCP frame never arrived"
    msg = parse_frame(got)
    assert msg is not None and msg.xid == 0x600D  # the DNS and other-segment frames never came
    assert after is None


def test_a_missing_interface_is_a_clear_error(make_lab: Callable[[Topology], Lab]) -> None:
    lab = make_lab(TOPOLOGY)
    with NamespaceWorker(lab.ns("check")) as checker, \
            pytest.raises(SiteCheckError, match="no network interface 'nope0'"):
        checker.call(PacketLink, "nope0")


def _send(iface: str, frame: bytes) -> None:
    with PacketLink(iface) as link:
        link.send(frame)
