"""The whole verdict on a site that meets every KubeFlex requirement, through the real CLI:
every requirement is checked and passes, the screen says SITE PASS, and the HTML report
shows who answered. Then one thing is broken at a time on the same kind of site."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.sitecheck.model import REQUIREMENTS
from harness.sitecheck.sites import SiteLab, load_site

pytestmark = [pytest.mark.sim, pytest.mark.timeout(180)]


def test_a_site_meeting_every_requirement_passes_all_of_them() -> None:
    with SiteLab(load_site("complete"), checker_segment="lan", services=True) as site:
        node = site.macs["node"][0]
        cp_url = site.cp.url("lan")
        run = site.run_sitecheck(["--mac", node, "--listen", "2", "--control-plane", cp_url,
                                  "--dns-update-zone", "site.test"])
        proxy = site.address("bp1")
    assert run.rc == 0, run.explain()
    report = run.report
    assert report["overall"] == "pass", run.explain()
    by_req: dict[str, list[str]] = {}
    for r in report["results"]:
        by_req.setdefault(r["requirement"], []).append(r["verdict"])
    # every requirement was checked, and nothing warned or failed
    assert set(by_req) == set(REQUIREMENTS), run.explain()
    assert all(v in ("pass", "skip") for vs in by_req.values() for v in vs), run.explain()
    # skips only where nothing was asked for (no hostnames named, no --serve)
    skipped = {r["name"] for r in report["results"] if r["verdict"] == "skip"}
    assert skipped <= {"dns.hostnames"}, run.explain()
    offer = run.result("proxydhcp.offer")
    assert proxy in offer["summary"] and "directly" in offer["summary"]
    assert "SITE PASS" in run.stdout
    html = (Path(run.argv[run.argv.index("--out") + 1]) / "site-check.html").read_text()
    assert "<svg" in html and f"Boot Proxy {proxy}" in html and "site DHCP" in html
