"""`site-check --serve MAC` tells "the proxy's answer got through" from "it was dropped on the
way": the real site-check CLI runs in the checker host of a simulated site (sites.py) with a
Boot Proxy of its own for one MAC, and an emulated machine with that MAC is powered on.

Good site: the machine acts on our offer → PASS. Snooping switch trusting only the site DHCP
server's port: our offers are dropped, the machine keeps re-sending DISCOVERs → FAIL with the
snooping diagnosis. A MAC that is never powered on → FAIL "nothing ... reached this host".
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from harness.machines.sim import EmulatorSpec, Fleet, profile
from harness.sitecheck.sites import SiteCheckRun, SiteLab, load_site
from harness.wait import wait_until

pytestmark = [pytest.mark.sim, pytest.mark.timeout(300)]

MAC = "52:54:00:5e:00:01"   # not assigned to the site's own proxy: only --serve answers it


def _serve_and_boot(site: SiteLab, boot: bool, serve_seconds: int = 40) -> SiteCheckRun:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["run"] = site.run_sitecheck(
                ["--serve", MAC, "--serve-seconds", str(serve_seconds), "--listen", "1"],
                timeout=240)
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name="site-check", daemon=True)
    thread.start()
    try:
        if boot:
            # our Boot Proxy is up when the checker's namespace holds UDP 4011
            def listening() -> bool:
                if not thread.is_alive():  # site-check ended before serving: say why now
                    raise AssertionError(box["run"].explain() if "run" in box
                                         else f"site-check failed: {box.get('error')!r}")
                return ":4011" in site.lab.run(site.checker_host,
                                               ["ss", "-Hlun", "sport = :4011"])

            wait_until(listening, timeout=120, what="the --serve Boot Proxy to listen on 4011",
                       interval=0.2)
            host = site.runner.plan.machine_host("lan")
            Fleet(site.lab, host, "lan", [EmulatorSpec(MAC, profile("pxe-bios"))],
                  scale=0.1).run(40)
    finally:
        thread.join(260)
    if "error" in box:
        raise box["error"]
    run: SiteCheckRun = box["run"]
    return run


def test_good_site_serve_passes_directly() -> None:
    with SiteLab(load_site("good"), checker_segment="lan") as site:
        run = _serve_and_boot(site, boot=True)
    result = run.result("proxydhcp.serve")
    assert result["verdict"] == "pass", run.explain()
    assert MAC in result["summary"] and "directly" in result["summary"]
    assert result["data"]["offers_sent"] >= 1


def test_snooping_site_serve_fails_with_the_snooping_diagnosis() -> None:
    with SiteLab(load_site("snooping"), checker_segment="lan") as site:
        run = _serve_and_boot(site, boot=True)
    result = run.result("proxydhcp.serve")
    assert result["verdict"] == "fail", run.explain()
    assert "never acted on it" in result["summary"] and "snooping" in result["summary"]
    assert result["data"]["discovers_after_offer"] >= 3
    assert "trust the Boot Proxy's switch port" in result["hint"]


def test_a_machine_that_never_boots_is_nothing_reached_this_host() -> None:
    with SiteLab(load_site("good"), checker_segment="lan") as site:
        run = _serve_and_boot(site, boot=False, serve_seconds=3)
    result = run.result("proxydhcp.serve")
    assert result["verdict"] == "fail", run.explain()
    assert f"nothing from {MAC} reached this host" in result["summary"]
