"""``flexlab site-check`` on the lab site of scenarios/blocked-port.yaml names the blocked
port, as the scenario's own verdict does (WAN-1).

The site is built from the scenario's plan (its WAN router letting out 80 and 8888 but
not 443, where its cloud Control Plane listens), with one more site host on the boot
LAN routed through the site router like every other. The real CLI runs there under
``ip netns exec``, pointed at the Control Plane's URL as the site was given it: its
outbound check must fail on tcp/443 (dropped on the way: timed out), and not on 80 or
8888, which the WAN lets out (the cloud host answers them with a refusal)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario.loader import load_scenario
from harness.sitecheck.sites import CHECKER, SiteLab

pytestmark = [pytest.mark.sim, pytest.mark.timeout(240)]

SCENARIO = Path(__file__).resolve().parents[3] / "scenarios" / "blocked-port.yaml"


def test_site_check_names_the_port_the_wan_blocks(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = load_scenario(SCENARIO)
    with SiteLab(scenario, checker_segment="lan", reports_dir=tmp_path) as site:
        # a site host reaches off-LAN hosts through the site router, as the plan routes
        # the proxy and the DHCP server
        site.lab.add_route(CHECKER, "0.0.0.0/0", site.address("gw", "lan"))
        proxy = site.runner.plan.proxy("bp1")
        cp_url = site.cp.url(proxy.cp_via.segment)
        ca = site.cp.ca_cert
        assert ca is not None   # a cloud Control Plane is always TLS (WAN-3)
        monkeypatch.setenv("FLEXLAB_CP_CA", str(ca))   # site-check's CA for a private one
        run = site.run_sitecheck(["--listen", "1", "--control-plane", cp_url])
    assert run.rc == 1, run.explain()            # SITE FAIL
    assert run.report["overall"] == "fail", run.explain()
    blocked = run.result("outbound.tcp443")
    assert blocked["verdict"] == "fail", run.explain()
    assert "port 443" in blocked["summary"] and "timed out" in blocked["summary"]
    assert blocked["data"]["outcome"] == "timeout"
    for port in (80, 8888):   # let out by the WAN: reached, nobody listens there
        other = run.result(f"outbound.tcp{port}")
        assert other["verdict"] != "fail", run.explain()
        assert other["data"]["outcome"] == "refused", run.explain()
    assert "443" in run.stdout
