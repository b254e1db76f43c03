"""A site with both modes at once (scenarios/hybrid-site.yaml): the hybrid cluster is run
from the cloud Control Plane over the private WAN, the standalone one from a second
Control Plane on the site's management segment, each with its own Boot Proxy on the
same LAN. Read from the two Control Planes' own logs: each registered its own machines
only, the cloud one saw every node through the WAN's NAT, the site one saw the nodes'
own addresses (nothing of the standalone cluster crossed the WAN)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.builder.runner import ScenarioRunner
from harness.scenario.loader import load_scenario

pytestmark = [pytest.mark.sim, pytest.mark.timeout(240)]

SCENARIO = Path(__file__).resolve().parents[3] / "scenarios" / "hybrid-site.yaml"


def _events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()
            if line.startswith("{")]


def test_each_cluster_is_registered_at_its_own_control_plane(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIO)
    runner = ScenarioRunner(scenario, reports_dir=tmp_path)
    plan = runner.plan
    result = runner.run()
    failed = [f"{e.subject}: {e.description} — {e.detail}" for e in result.expectations
              if e.verdict == "fail"]
    assert result.verdict == "pass", (result.error, failed)
    logs = {p.name: p for p in result.logs}
    cloud, site = _events(logs["controlplane.log"]), _events(logs["controlplane-site.log"])
    hybrid = {m.mac for m in plan.machines if m.cluster == "alpha"}
    standalone = {m.mac for m in plan.machines if m.cluster == "beta"}
    assert hybrid and standalone

    def registered(events: list[dict]) -> set[str]:
        return {e["subject"] for e in events if e.get("kind") == "node.registered"}

    def proxies(events: list[dict]) -> set[str]:
        return {e["subject"] for e in events if e.get("kind") == "proxy.registered"}

    assert registered(cloud) == hybrid
    assert registered(site) == standalone
    assert proxies(cloud) == {"bp1"} and proxies(site) == {"bp2"}
    # the cloud saw the site only as the tunnel's NAT address; the site Control Plane
    # saw its nodes' own LAN addresses, with nothing translated
    nat = {e["client"] for e in cloud if e.get("route") == "register"}
    local = {e["client"] for e in site if e.get("route") == "register"}
    assert len(nat) == 1 and len(local) == len(standalone), (nat, local)
    assert not nat & local
    # each proxy synced its assignments from its own Control Plane
    for proxy in ("bp1", "bp2"):
        synced = [e for e in _events(logs[f"bootproxy-{proxy}.log"])
                  if e.get("event") == "assignments_updated"]
        assert synced, f"{proxy} never synced"
