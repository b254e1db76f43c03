"""site-check on a relayed segment whose relay forwards to the site DHCP server only."""

from __future__ import annotations

import pytest

from harness.sitecheck.dhcp_fake import FakeLan, proxy_server, site_server
from harness.sitecheck.dhcp_probe import check_proxydhcp
from harness.sitecheck.model import CheckVerdict, SiteCheckOptions, SiteContext

pytestmark = pytest.mark.unit

MAC = "52:54:00:aa:00:01"


def offer_result(lan: FakeLan) -> tuple[CheckVerdict, str, str]:
    context = SiteContext(options=SiteCheckOptions(iface="eth0"), iface_mac=MAC,
                          iface_ipv4="10.2.0.10/24")
    (r,) = [r for r in check_proxydhcp(context, link=lan, clock=lan.clock)
            if r.name == "proxydhcp.offer"]
    return r.verdict, r.summary, r.hint


def test_a_relayed_site_offer_without_a_proxy_offer_blames_the_relay() -> None:
    lan = FakeLan(servers=[site_server("10.1.0.2", "10.2.0.150", giaddr="10.2.0.1")])
    verdict, summary, hint = offer_result(lan)
    assert verdict is CheckVerdict.FAIL
    assert summary == (f"the relay does not forward to the Boot Proxy: relay 10.2.0.1 carried "
                       f"the PXE DISCOVER for {MAC} to site DHCP server 10.1.0.2, but no "
                       "ProxyDHCP offer came back through it")
    assert "helper list" in hint and MAC in hint


def test_a_direct_site_offer_keeps_the_snooping_diagnosis() -> None:
    """On the proxy's own segment the reply may have been dropped on the way: that is
    not the relay's fault."""
    lan = FakeLan(servers=[site_server("10.2.0.2", "10.2.0.150")])
    assert offer_result(lan)[1].endswith("or a reply was dropped on the way (DHCP snooping?)")


def test_the_relay_forwarding_to_the_proxy_passes() -> None:
    lan = FakeLan(servers=[site_server("10.1.0.2", "10.2.0.150", giaddr="10.2.0.1"),
                           proxy_server("10.1.0.5", giaddr="10.2.0.1")])
    assert offer_result(lan)[0] is CheckVerdict.PASS
