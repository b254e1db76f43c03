"""The summary page's WAN section: which ports crossed the WAN router, in which
direction, on which path, allowed or dropped — from the router's flow sets as saved in
run.json, rendered into the page (and absent without a WAN)."""

from __future__ import annotations

import pytest

from harness.judge.observed import Observed
from harness.judge.result import RunResult
from harness.reports.html import html_text, render_html
from harness.reports.wan_section import flow_rows, wan_section
from harness.rules.site_facts import SiteFacts, WanFacts, WanFlow

pytestmark = pytest.mark.unit

FLOWS = (
    WanFlow("10.0.0.5", "10.9.0.2", "tcp", 443, "out", "wan", "accepted", 40, "proxy bp1"),
    WanFlow("10.0.0.6", "10.9.0.2", "tcp", 443, "out", "wan", "accepted", 12),
    WanFlow("10.0.0.5", "10.9.0.2", "tcp", 8888, "out", "wan", "dropped", 3, "proxy bp1"),
    WanFlow("10.9.0.2", "10.1.0.1", "tcp", 22, "in", "wan", "dropped", 2),
)
WAN = WanFacts((80, 443), False, "10.9.0.1", FLOWS, "10.9.0.2")


def test_flows_are_grouped_per_port_direction_and_verdict_dropped_first() -> None:
    rows = flow_rows(FLOWS)
    assert [(r.verdict, r.port, r.direction) for r in rows] == [
        ("dropped", "tcp/22", "in"), ("dropped", "tcp/8888", "out"),
        ("accepted", "tcp/443", "out")]
    allowed = rows[-1]
    assert allowed.packets == 52
    assert allowed.parties == ["proxy bp1 → 10.9.0.2", "10.0.0.6 → 10.9.0.2"]


def test_the_section_names_what_crossed_and_what_was_dropped() -> None:
    html = wan_section(WAN, html_text)
    assert 'id="wan"' in html
    assert "lets out TCP 80, 443 and nothing in" in html
    assert "Crossed: tcp/443; dropped: tcp/22 (in), tcp/8888 (out)" in html
    assert "proxy bp1 → 10.9.0.2" in html and "towards the site" in html
    assert "plain WAN (NAT)" in html and "WireGuard" not in html


def test_a_private_wan_says_so_and_a_silent_router_shows_no_flow() -> None:
    html = wan_section(WanFacts((443,), True, "10.200.0.1", (), "10.200.0.2"), html_text)
    assert "must use the WireGuard tunnel" in html
    assert "Crossed: nothing; dropped: nothing" in html and "saw no flow" in html


def _run(site: SiteFacts | None) -> RunResult:
    return RunResult(scenario_name="s", scenario_file=None, scenario={}, tier="sim",
                     lab_id="x", started=0.0, finished=1.0, versions={},
                     observed=Observed(scenario={}, site=site))


def test_the_summary_page_has_the_section_only_with_a_wan() -> None:
    assert 'id="wan"' in render_html(_run(SiteFacts(wan=WAN)))
    assert 'id="wan"' not in render_html(_run(SiteFacts()))
    assert 'id="wan"' not in render_html(_run(None))
