"""judge() on fabricated evidence: a plan, an Observed and no lab at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.capture.events import Capture
from harness.judge.judge import judge
from harness.judge.observed import Observed, from_plain, scenario_data, to_plain
from harness.judge.result import RunResult
from harness.plan import plan
from harness.rules.site_facts import DnsName, NodeClock, SiteFacts
from harness.scenario.drivers import MachineProgress, TimelineEvent
from harness.scenario.loader import parse_scenario

pytestmark = pytest.mark.unit

SCENARIO = parse_scenario("""
name: judged
segments: [{name: lan}]
site_dhcp: [{segment: lan}]
proxies: [{name: bp1, segments: [lan], clusters: [c1]}]
clusters: [{name: c1}]
machines:
  - {name: a, segment: lan, cluster: c1}
  - {name: idle, segment: lan, cluster: c1}
steps: [{at: 0, action: power_on, machines: [a]}]
expect:
  rules: []
  machines:
    - {name: a, state: Ready, ready_within: 10}
  clusters: [{name: c1, ready: false}]
""")
SITE = plan(SCENARIO)
MAC = SITE.machines[0].mac
ADDRESSES = {"cp@lan": "10.0.0.1", "dhcp0@lan": "10.0.0.2", "bp1@lan": "10.0.0.3"}


def run_record(**kw: object) -> RunResult:
    return RunResult(scenario_name="judged", scenario_file=None, scenario={}, tier="sim",
                     lab_id="fl1", started=100.0, finished=200.0, **kw)  # type: ignore[arg-type]


def observed(**kw: object) -> Observed:
    base: dict[str, object] = dict(
        scenario=scenario_data(SCENARIO), addresses=dict(ADDRESSES), driver="sim",
        cp_state={"machines": [{"mac": MAC, "state": "Ready", "reasons": []}],
                  "clusters": [{"name": "c1", "status": {"phase": "Forming"}}],
                  "conflicts": [],
                  "events": [{"kind": "node.ready", "subject": MAC, "time": 104.0},
                             {"kind": "node.ready", "subject": MAC, "time": 112.5}]},
        progress={"a": MachineProgress("a", phase="done", finished=True,
                                       answered_by=["10.0.0.3", "10.9.9.9"],
                                       timeline=[TimelineEvent(1.0, "state", "dhcp")])},
        powered_at={"a": 110.0})
    base.update(kw)
    return Observed(**base)  # type: ignore[arg-type]


def test_machines_are_judged_from_progress_power_and_control_plane_state() -> None:
    out = judge(SCENARIO, SITE, {}, observed(), run_record())
    a, idle = out.machines
    assert (a.name, a.state, a.driver, a.cluster) == ("a", "Ready", "sim", "c1")
    assert a.answered_by == ["10.9.9.9", "bp1"]      # a proxy by name, a stranger as is
    assert a.ready_seconds == pytest.approx(2.5)     # after its last power-on, not 104.0
    assert a.timeline[0].summary == "dhcp"
    assert (idle.state, idle.powered_at, idle.ready_seconds) == ("Off", None, None)
    assert [(e.subject, e.verdict) for e in out.expectations] == [
        ("a", "pass"), ("a", "pass"), ("c1", "pass")]
    assert out.verdict == "pass"


def test_a_machine_error_and_a_slow_boot_fail_their_expectations() -> None:
    prog = MachineProgress("a", phase="failed", finished=True, error="PXE-E32 TFTP timeout")
    late = {"machines": [{"mac": MAC, "state": "Ready", "reasons": []}], "clusters": [],
            "conflicts": [], "events": [{"kind": "node.ready", "subject": MAC, "time": 112.5}]}
    out = judge(SCENARIO, SITE, {}, observed(progress={"a": prog}, powered_at={"a": 100.0},
                                             cp_state=late), run_record())
    assert out.machines[0].reasons == ["machine: PXE-E32 TFTP timeout"]
    ready_within = next(e for e in out.expectations if "within" in e.description)
    assert ready_within.verdict == "fail" and "12.5" in ready_within.detail


def test_the_run_error_fails_the_run_and_an_unread_control_plane_fails_its_checks() -> None:
    out = judge(SCENARIO, SITE, {}, observed(cp_state={"error": "connection refused"}),
                run_record(error="TimeoutError: boom"))
    assert out.error == "TimeoutError: boom"
    assert out.expectations[0].kind == "run" and out.expectations[0].verdict == "fail"
    assert all(e.verdict == "fail" for e in out.expectations)
    assert "connection refused" in out.expectations[1].detail


def test_a_capture_that_dropped_frames_fails_the_run() -> None:
    run = run_record(pcaps={"lan": Path("lan.pcap")})
    out = judge(SCENARIO, SITE, {"lan": Capture(path="lan.pcap", frames=0)},
                observed(capture_stats={"lan": {"received": 90, "dropped": 10}}), run)
    drop = out.expectations[-1]
    assert (drop.subject, drop.verdict) == ("capture lan", "fail")
    assert "dropped 10 of 90" in drop.detail


def test_nothing_is_judged_when_the_lab_never_came_up() -> None:
    out = judge(SCENARIO, SITE, {}, observed(addresses={}), run_record(error="LabError: x"))
    assert out.machines == [] and out.expectations == [] and out.verdict == "fail"


def test_old_judgements_are_replaced_not_added_to() -> None:
    first = judge(SCENARIO, SITE, {}, observed(), run_record())
    again = judge(SCENARIO, SITE, {}, observed(), first)
    assert again.expectations == first.expectations and len(again.machines) == 2


def test_observed_survives_json_with_site_facts() -> None:
    site = SiteFacts(dns=(DnsName(MAC, "a", "10.0.0.9", ("10.0.0.9",), None, ()),),
                     clocks=(NodeClock(MAC, 0.25, "10.0.0.5"),), notes={"WAN-1": "none"})
    before = observed(site=site, run_error="teardown: x")
    timelines = {"a": before.progress["a"].timeline}
    after = from_plain(to_plain(before), timelines)
    assert after == before
    assert after.address_of("bp1", "lan") == "10.0.0.3"
