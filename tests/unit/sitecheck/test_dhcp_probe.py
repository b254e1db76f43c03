"""The DHCP/ProxyDHCP probes' verdicts and limits, against scripted servers on a fake LAN."""

from __future__ import annotations

import itertools

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from harness.sitecheck.dhcp_exchange import Probe, run_exchange
from harness.sitecheck.dhcp_fake import FakeLan, offer_frame, proxy_server, site_server
from harness.sitecheck.dhcp_probe import check_dhcp, check_proxydhcp
from harness.sitecheck.dhcp_wire import DhcpMessage, parse_frame, pxe_discover_frame
from harness.sitecheck.model import CheckResult, CheckVerdict, SiteCheckOptions, SiteContext

pytestmark = pytest.mark.unit

MAC = "52:54:00:aa:00:01"
NODE = "52:54:00:bb:00:02"


def ctx(**opts: object) -> SiteContext:
    return SiteContext(options=SiteCheckOptions(iface="eth0", **opts),  # type: ignore[arg-type]
                       iface_mac=MAC, iface_ipv4="10.9.0.10/24")


def only(results: list[CheckResult], name: str) -> CheckResult:
    found = [r for r in results if r.name == name]
    assert len(found) == 1, [r.name for r in results]
    return found[0]


def garbage() -> bytes:
    return bytes(Ether() / IP(src="10.9.0.66") / UDP(sport=67, dport=68) / (b"\x02" * 50))


# -- the exchange's limits ---------------------------------------------------------------
def test_probes_are_rate_limited_and_retried_once_when_unanswered() -> None:
    lan = FakeLan()
    probes = [Probe(m, x, pxe_discover_frame(m, x))
              for x, m in enumerate([MAC, NODE, "52:54:00:cc:00:03"], start=1)]
    run_exchange(lan, probes, 4.0, clock=lan.clock)
    times = [t for t, _ in lan.sent]
    assert len(times) == 6  # two tries each, never more
    assert all(b - a >= 0.2 - 1e-9 for a, b in itertools.pairwise(times))
    for p in probes:
        assert len(p.sent_at) == 2 and p.sent_at[1] - p.sent_at[0] >= 2.0


def test_answered_probe_is_not_retransmitted() -> None:
    lan = FakeLan(servers=[proxy_server("10.9.0.5")])
    probe = Probe(MAC, 5, pxe_discover_frame(MAC, 5))
    ex = run_exchange(lan, [probe], 3.0, clock=lan.clock)
    assert len(lan.sent) == 1
    assert len(ex.replies_to(probe)) == 1


def test_passive_sends_nothing() -> None:
    lan = FakeLan(servers=[site_server("10.9.0.2", "10.9.0.150")])
    results = check_dhcp(ctx(passive=True), link=lan, clock=lan.clock)
    results += check_proxydhcp(ctx(passive=True), link=lan, clock=lan.clock)
    assert lan.sent == []
    assert only(results, "dhcp.offers").verdict is CheckVerdict.SKIP
    assert only(results, "proxydhcp.offer").verdict is CheckVerdict.SKIP


# -- requirement 1 -----------------------------------------------------------------------
def test_one_site_server_passes_and_its_options_become_facts() -> None:
    lan = FakeLan(servers=[site_server("10.9.0.2", "10.9.0.150"), proxy_server("10.9.0.5")])
    c = ctx()
    results = check_dhcp(c, link=lan, clock=lan.clock)
    offers = only(results, "dhcp.offers")
    assert offers.verdict is CheckVerdict.PASS, offers
    assert "10.9.0.2 offered 10.9.0.150" in offers.summary
    assert c.facts.dns_servers == ["10.9.0.53"] and c.facts.ntp_servers == ["10.9.0.123"]
    assert c.facts.domain == "site.example" and c.facts.routers == ["10.9.0.1"]
    assert c.facts.offered_address == "10.9.0.150" and c.facts.dhcp_servers == ["10.9.0.2"]
    assert only(results, "responders.site_pxeclient").verdict is CheckVerdict.PASS
    sent = [m for _, m in lan.sent]
    assert all(60 not in m.options and m.chaddr == MAC for m in sent)
    assert all(m.msg_type == 1 for m in sent)  # DISCOVER only: no lease is ever requested


def test_no_server_fails() -> None:
    lan = FakeLan()
    results = check_dhcp(ctx(), link=lan, clock=lan.clock)
    r = only(results, "dhcp.offers")
    assert r.verdict is CheckVerdict.FAIL and "no DHCP server answered" in r.summary
    assert r.hint
    assert len(lan.sent) == 2


def test_two_site_servers_warn_and_are_both_listed() -> None:
    lan = FakeLan(servers=[site_server("10.9.0.2", "10.9.0.150"),
                           site_server("10.9.0.3", "10.9.0.200")])
    r = only(check_dhcp(ctx(), link=lan, clock=lan.clock), "dhcp.offers")
    assert r.verdict is CheckVerdict.WARN
    assert "10.9.0.2" in r.summary and "10.9.0.3" in r.summary


def test_site_server_sending_pxeclient_fails() -> None:
    lan = FakeLan(servers=[site_server("10.9.0.2", "10.9.0.150", pxeclient=True)])
    results = check_dhcp(ctx(), link=lan, clock=lan.clock)
    assert only(results, "dhcp.offers").verdict is CheckVerdict.PASS
    r = only(results, "responders.site_pxeclient")
    assert r.verdict is CheckVerdict.FAIL and "10.9.0.2" in r.summary and "SITE-2" in r.hint
    assert r.data["responders"][0]["pxeclient"] is True


def test_proxy_answering_a_plain_discover_is_flagged() -> None:
    lan = FakeLan(servers=[site_server("10.9.0.2", "10.9.0.150"),
                           proxy_server("10.9.0.5", answer_plain=True)])
    r = only(check_dhcp(ctx(), link=lan, clock=lan.clock), "responders.plain_discover")
    assert r.verdict is CheckVerdict.WARN and "10.9.0.5" in r.summary


def test_malformed_replies_are_counted_not_fatal() -> None:
    lan = FakeLan(servers=[site_server("10.9.0.2", "10.9.0.150")],
                  noise=[garbage(), garbage(), garbage()])
    r = only(check_dhcp(ctx(), link=lan, clock=lan.clock), "dhcp.offers")
    assert r.verdict is CheckVerdict.PASS
    assert "3 malformed replies ignored" in r.evidence


# -- requirements 2 and 3 ----------------------------------------------------------------
def test_proxy_offer_passes_directly() -> None:
    lan = FakeLan(servers=[site_server("10.9.0.2", "10.9.0.150"),
                           proxy_server("10.9.0.5", serves={NODE}, file=b"ipxe.efi")])
    results = check_proxydhcp(ctx(probe_macs=[NODE]), link=lan, clock=lan.clock)
    r = only(results, "proxydhcp.offer")
    assert r.verdict is CheckVerdict.PASS
    assert r.summary == f"Boot Proxy 10.9.0.5 answered {NODE} directly"
    assert only(results, "responders.conflict").verdict is CheckVerdict.PASS
    sent = [m for _, m in lan.sent]
    assert [m.chaddr for m in sent] == [NODE]
    assert all(m.pxeclient and 93 in m.options and 97 in m.options for m in sent)


def test_relayed_proxy_offer_names_the_giaddr() -> None:
    lan = FakeLan(servers=[proxy_server("10.1.0.5", giaddr="10.2.0.1")])
    r = only(check_proxydhcp(ctx(), link=lan, clock=lan.clock), "proxydhcp.offer")
    assert r.verdict is CheckVerdict.PASS
    assert "through relay giaddr 10.2.0.1" in r.summary
    assert r.data["responders"][0]["via"] == "10.2.0.1"


def test_no_proxy_offer_fails_with_the_snooping_diagnosis() -> None:
    lan = FakeLan(servers=[site_server("10.9.0.2", "10.9.0.150"),
                           proxy_server("10.9.0.5", serves={NODE})])
    r = only(check_proxydhcp(ctx(), link=lan, clock=lan.clock), "proxydhcp.offer")
    assert r.verdict is CheckVerdict.FAIL
    assert r.summary == (f"nothing answered a PXE DISCOVER for {MAC}; or a reply was dropped "
                         "on the way (DHCP snooping?)")
    assert "Run with --serve on the Boot Proxy host to tell these apart" in r.hint
    assert any("site DHCP offer" in line for line in r.evidence)
    assert len(lan.sent) == 2


def test_a_retransmission_that_is_answered_passes() -> None:
    lan = FakeLan(servers=[proxy_server("10.9.0.5", drop_first=True)])
    r = only(check_proxydhcp(ctx(), link=lan, clock=lan.clock), "proxydhcp.offer")
    assert r.verdict is CheckVerdict.PASS
    assert "sent 2 PXE DISCOVERs" in r.evidence[0]


def test_two_proxies_for_one_mac_conflict_and_both_are_named() -> None:
    lan = FakeLan(servers=[proxy_server("10.9.0.5", file=b"a.efi"),
                           proxy_server("10.9.0.6", file=b"b.efi")])
    results = check_proxydhcp(ctx(probe_macs=[NODE, MAC]), link=lan, clock=lan.clock)
    offers = [r for r in results if r.name == "proxydhcp.offer"]
    assert [r.data["mac"] for r in offers] == [NODE, MAC]
    r = only(results, "responders.conflict")
    assert r.verdict is CheckVerdict.FAIL
    assert "10.9.0.5" in r.summary and "10.9.0.6" in r.summary and NODE in r.summary
    text = "\n".join(r.evidence)
    assert "'a.efi'" in text and "'b.efi'" in text
    assert r.data["macs"] == sorted([NODE, MAC])


def test_passive_reports_overheard_proxy_offers_and_conflicts() -> None:
    req = parse_frame(pxe_discover_frame(NODE, 77))
    assert isinstance(req, DhcpMessage)
    heard = [pxe_discover_frame(NODE, 77),
             offer_frame(req, server="10.9.0.5", extra=[(60, b"PXEClient")]),
             offer_frame(req, server="10.9.0.6", extra=[(60, b"PXEClient")])]
    lan = FakeLan(noise=heard)
    results = check_proxydhcp(ctx(passive=True), link=lan, clock=lan.clock)
    assert lan.sent == []
    assert only(results, "proxydhcp.offer").verdict is CheckVerdict.PASS
    assert only(results, "responders.conflict").verdict is CheckVerdict.FAIL


def test_responders_reach_the_html_responder_map() -> None:
    from harness.sitecheck.render import responder_map_svg
    from harness.sitecheck.runner import SiteReport

    lan = FakeLan(servers=[site_server("10.9.0.2", "10.9.0.150", pxeclient=True),
                           proxy_server("10.9.0.5", giaddr="10.2.0.1"),
                           proxy_server("10.9.0.6")])
    c = ctx()
    report = SiteReport(options=c.options, host="h", iface_mac=MAC, iface_ipv4=None, started=0)
    report.results = (check_dhcp(c, link=lan, clock=lan.clock)
                      + check_proxydhcp(c, link=lan, clock=lan.clock))
    svg = responder_map_svg(report)
    assert "site DHCP 10.9.0.2" in svg and "sends PXEClient" in svg
    assert "Boot Proxy 10.9.0.5" in svg and "via relay 10.2.0.1" in svg
    assert "Boot Proxy 10.9.0.6" in svg
    assert svg.count("#c62828") >= 3  # the PXEClient site server and both conflicting proxies
