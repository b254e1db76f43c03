"""site-check's DHCP, ProxyDHCP and responder verdicts on simulated sites (real packets,
real site DHCP, real Boot Proxies, the real CLI run in a checker host on the LAN)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.sitecheck.sites import SiteCheckRun, SiteLab, load_site

pytestmark = [pytest.mark.sim, pytest.mark.timeout(60)]

LISTEN = ["--listen", "2"]


@dataclass
class Checked:
    """A site-check run on a site, with the site's addresses (on the checker's segment) and
    the MAC of its machine "node" (registered in the Control Plane, never powered on)."""

    run: SiteCheckRun
    addr: dict[str, str]
    mac: str

    def verdict(self, name: str) -> str:
        return str(self.run.result(name)["verdict"])


def check(request: pytest.FixtureRequest, site_name: str, segment: str = "lan") -> Checked:
    """Build the site, run site-check on ``segment`` probing as node's MAC, tear down."""
    reports = Path(request.config.getoption("flexlab_reports"))
    with SiteLab(load_site(site_name), checker_segment=segment, reports_dir=reports) as site:
        mac = site.macs["node"][0]
        run = site.run_sitecheck([*LISTEN, "--mac", mac])
        addr = {host: site.address(host) for host in ("bp1", "bp2", "dhcp0")
                if (host, segment) in site.lab.links}
        relay_hosts = {r.downstream: r.host for r in site.runner.plan.relays}
        if segment in relay_hosts:
            addr["relay"] = site.address(relay_hosts[segment])
            addr["bp1"] = site.address("bp1", site.scenario.proxies[0].segments[0])
    return Checked(run, addr, mac)


def test_good_site_passes_dhcp_and_proxydhcp(request: pytest.FixtureRequest) -> None:
    c = check(request, "good")
    dhcp = c.run.result("dhcp.offers")
    assert dhcp["verdict"] == "pass", c.run.explain()
    assert dhcp["summary"].startswith(f"DHCP server {c.addr['dhcp0']} offered ")
    offer = c.run.result("proxydhcp.offer")
    assert offer["verdict"] == "pass", c.run.explain()
    assert offer["summary"] == f"Boot Proxy {c.addr['bp1']} answered {c.mac} directly"
    assert c.verdict("responders.conflict") == "pass"
    assert c.verdict("responders.site_pxeclient") == "pass"


def test_site_without_dhcp_fails_dhcp(request: pytest.FixtureRequest) -> None:
    c = check(request, "no-dhcp")
    assert c.run.rc == 1, c.run.explain()
    dhcp = c.run.result("dhcp.offers")
    assert dhcp["verdict"] == "fail", c.run.explain()
    assert "no DHCP server answered" in dhcp["summary"]
    assert "sent 2 plain DISCOVERs" in dhcp["evidence"][0]
    assert c.verdict("proxydhcp.offer") == "pass"  # the Boot Proxy is there all the same


def test_relayed_site_passes_through_the_relay(request: pytest.FixtureRequest) -> None:
    c = check(request, "relayed")
    offer = c.run.result("proxydhcp.offer")
    assert offer["verdict"] == "pass", c.run.explain()
    assert offer["summary"] == (f"Boot Proxy {c.addr['bp1']} answered {c.mac} through relay "
                                f"giaddr {c.addr['relay']}")
    assert c.verdict("dhcp.offers") == "pass", c.run.explain()


def test_snooping_switch_fails_proxydhcp_with_the_diagnosis(
        request: pytest.FixtureRequest) -> None:
    c = check(request, "snooping")
    offer = c.run.result("proxydhcp.offer")
    assert offer["verdict"] == "fail", c.run.explain()
    assert offer["summary"] == (f"nothing answered a PXE DISCOVER for {c.mac}; or a reply was "
                                "dropped on the way (DHCP snooping?)")
    assert "Run with --serve on the Boot Proxy host" in offer["hint"]
    assert c.verdict("dhcp.offers") == "pass"  # the trusted site server still gets through
    assert c.run.rc == 1


def test_two_proxies_for_one_mac_conflict(request: pytest.FixtureRequest) -> None:
    c = check(request, "two-proxies")
    conflict = c.run.result("responders.conflict")
    assert conflict["verdict"] == "fail", c.run.explain()
    assert c.addr["bp1"] in conflict["summary"] and c.addr["bp2"] in conflict["summary"]
    assert conflict["data"]["macs"] == [c.mac]
    assert c.verdict("proxydhcp.offer") == "pass"


def test_site_dhcp_sending_pxeclient_is_flagged(request: pytest.FixtureRequest) -> None:
    c = check(request, "site-pxeclient")
    flagged = c.run.result("responders.site_pxeclient")
    assert flagged["verdict"] == "fail", c.run.explain()
    assert c.addr["dhcp0"] in flagged["summary"]
    assert "SITE-2" in flagged["hint"]
    assert c.verdict("dhcp.offers") == "pass"
