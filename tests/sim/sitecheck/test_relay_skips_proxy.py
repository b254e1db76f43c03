"""The relay that forwards to the site DHCP server but not to the Boot Proxy, seen by the
real ``flexlab site-check`` on the machines' segment (the scenario relay-skips-proxy's
site: real dhcrelay, dnsmasq and Boot Proxy, the CLI run under ``ip netns exec``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario.loader import load_scenario
from harness.sitecheck.sites import SiteLab

pytestmark = [pytest.mark.sim, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[3]


def test_sitecheck_says_the_relay_does_not_forward_to_the_boot_proxy(
        request: pytest.FixtureRequest) -> None:
    reports = Path(request.config.getoption("flexlab_reports"))
    scenario = load_scenario(ROOT / "scenarios" / "relay-skips-proxy.yaml")
    with SiteLab(scenario, checker_segment="lan", reports_dir=reports) as site:
        mac = site.macs["bios"][0]
        run = site.run_sitecheck(["--listen", "2", "--mac", mac])
        (relay,) = site.runner.plan.relays
        giaddr, dhcp = site.address(relay.host, "lan"), site.address("dhcp0", "core")
    offer = run.result("proxydhcp.offer")
    assert offer["verdict"] == "fail", run.explain()
    assert offer["summary"] == (
        f"the relay does not forward to the Boot Proxy: relay {giaddr} carried the PXE "
        f"DISCOVER for {mac} to site DHCP server {dhcp}, but no ProxyDHCP offer came back "
        "through it"), run.explain()
    assert run.result("dhcp.offers")["verdict"] == "pass"  # the relay does reach DHCP
    assert run.rc == 1
