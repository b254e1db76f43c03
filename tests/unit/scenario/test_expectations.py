"""Every expectation kind of a scenario file, judged passing and failing, without a lab.

The evidence (captures, Control Plane state, machine results, rule findings) is built by
hand, so each case shows exactly which fact turns a verdict.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from harness.capture.events import Capture, DhcpEvent, TftpEvent
from harness.judge.expectations import judge_expectations
from harness.judge.result import ExpectationResult, MachineResult, RunResult
from harness.rules.model import Finding, Level, Verdict
from harness.scenario import parse_scenario
from harness.scenario.checks import machine_macs
from harness.scenario.model import Scenario

pytestmark = pytest.mark.unit

BP1, BP2, ROGUE = "10.0.0.2", "10.0.0.3", "10.0.0.9"
NAMES = {BP1: "bp1", BP2: "bp2"}
BASE = """
name: judged
segments: [{name: lan}]
site_dhcp: [{segment: lan}]
proxies:
  - {name: bp1, segments: [lan], clusters: [alpha]}
  - {name: bp2, segments: [lan], clusters: [alpha]}
clusters: [{name: alpha}]
machines:
  - {name: a, segment: lan, cluster: alpha}
  - {name: s, segment: lan}
steps: [{at: 0, action: power_on, machines: [a, s]}]
"""


def scenario(expect: str) -> Scenario:
    """BASE with the given ``expect:`` block (YAML flow mapping)."""
    return parse_scenario(BASE + f"expect: {expect}\n")


def mac_of(sc: Scenario, name: str) -> str:
    return machine_macs(sc)[name][0]


def dhcp(frame: int, mac: str, server: str, *, yiaddr: str = "0.0.0.0",
         vendor: str | None = "PXEClient", sport: int = 67) -> DhcpEvent:
    """A server reply to ``mac`` (a proxy offer by default)."""
    return DhcpEvent(
        frame=frame, time=float(frame), src_mac="02:00:00:00:00:02", dst_mac=mac,
        src_ip=server, dst_ip="255.255.255.255", sport=sport, dport=68, op=2, htype=1,
        hlen=6, hops=0, xid=1, secs=0, flags=0x8000, broadcast=True, ciaddr="0.0.0.0",
        yiaddr=yiaddr, siaddr="0.0.0.0", giaddr="0.0.0.0", chaddr=mac, sname="", file="",
        sname_raw=b"", file_raw=b"", magic_ok=True, msg_type="OFFER", options=(),
        end_present=True, options_error=None, overload=None, dhcp_len=300,
        vendor_class=vendor, server_id=server)


def capture(*events: DhcpEvent, tftp: tuple[TftpEvent, ...] = ()) -> dict[str, Capture]:
    return {"lan": Capture(path="lan.pcap", frames=100, dhcp=list(events), tftp=list(tftp))}


def cp(sc: Scenario, *, states: dict[str, str] | None = None,
       reasons: dict[str, list[str]] | None = None, phase: str = "Ready",
       conflicts: list[dict[str, Any]] | None = None,
       events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Control Plane state as the runner collects it."""
    states = states or {}
    machines = [{"mac": mac_of(sc, n), "state": st, "reasons": (reasons or {}).get(n, [])}
                for n, st in states.items()]
    return {"machines": machines,
            "clusters": [{"name": "alpha", "status": {"phase": phase, "ready": 1,
                                                      "expected": 1, "missing": []}}],
            "conflicts": conflicts or [], "events": events or []}


def run_result(sc: Scenario, *, findings: list[Finding] | None = None,
               machines: list[MachineResult] | None = None) -> RunResult:
    return RunResult(scenario_name=sc.name, scenario_file=None, scenario={}, tier="sim",
                     lab_id="fltest", started=1000.0, finished=1100.0,
                     machines=machines or [], findings={"lan": findings or []})


def machine(sc: Scenario, name: str, **kw: Any) -> MachineResult:
    base = MachineResult(name=name, mac=mac_of(sc, name), firmware="seabios-ipxe",
                         segment="lan", cluster="alpha", driver="sim")
    return replace(base, **kw)


def proxy_names(addresses: list[str]) -> list[str]:
    return sorted({NAMES.get(a, a) for a in addresses})


def judge(sc: Scenario, result: RunResult | None = None,
          captures: dict[str, Capture] | None = None,
          cp_state: dict[str, Any] | None = None) -> list[ExpectationResult]:
    def keys(name: str) -> list[str]:
        return [name]

    return judge_expectations(sc, result or run_result(sc), captures or capture(),
                              cp(sc) if cp_state is None else cp_state, proxy_names, keys)


def only(results: list[ExpectationResult], kind: str) -> ExpectationResult:
    picked = [r for r in results if r.kind == kind]
    assert len(picked) == 1, results
    return picked[0]


def finding(rule: str, verdict: Verdict, level: Level = Level.MUST, message: str = "",
            frames: tuple[int, ...] = ()) -> Finding:
    return Finding(rule, level, verdict, message or f"{rule} {verdict}", frames)


# -- machines ----------------------------------------------------------------------------
def test_state_passes_on_the_control_planes_state_and_fails_otherwise() -> None:
    sc = scenario("{rules: [], machines: [{name: a, state: Ready}]}")
    assert only(judge(sc, cp_state=cp(sc, states={"a": "Ready"})), "machine").verdict == "pass"
    failed = only(judge(sc, cp_state=cp(sc, states={"a": "Pending"})), "machine")
    assert failed.verdict == "fail" and "state Pending" in failed.detail


def test_reason_contains_needs_the_text_in_a_reason() -> None:
    sc = scenario("{rules: [], machines: [{name: a, state: Rejected, reason_contains: disk}]}")
    ok = cp(sc, states={"a": "Rejected"}, reasons={"a": ["disk 5 GB < 10 GB"]})
    assert only(judge(sc, cp_state=ok), "machine").verdict == "pass"
    other = cp(sc, states={"a": "Rejected"}, reasons={"a": ["cores 1 < 2"]})
    failed = only(judge(sc, cp_state=other), "machine")
    assert failed.verdict == "fail" and "cores 1 < 2" in failed.detail


def test_reason_contains_alone_is_judged_too() -> None:
    sc = scenario("{rules: [], machines: [{name: a, reason_contains: disk}]}")
    ok = cp(sc, states={"a": "Rejected"}, reasons={"a": ["disk too small"]})
    assert only(judge(sc, cp_state=ok), "machine").verdict == "pass"
    assert only(judge(sc, cp_state=cp(sc, states={"a": "Ready"})), "machine").verdict == "fail"


def test_reason_contains_reads_the_machines_own_error_too() -> None:
    sc = scenario("{rules: [], machines: [{name: a, state: Pending, reason_contains: PXE-E55}]}")
    stuck = run_result(sc, machines=[machine(sc, "a", reasons=["machine: PXE-E55: no reply"])])
    pending = cp(sc, states={"a": "Pending"})
    verdict = only(judge(sc, stuck, cp_state=pending), "machine")
    assert verdict.verdict == "pass" and "PXE-E55" in verdict.detail
    quiet = run_result(sc, machines=[machine(sc, "a")])
    assert only(judge(sc, quiet, cp_state=pending), "machine").verdict == "fail"


def test_booted_via_needs_that_proxy_and_no_other() -> None:
    sc = scenario("{rules: [], machines: [{name: a, booted_via: bp1}]}")
    a = mac_of(sc, "a")
    assert only(judge(sc, captures=capture(dhcp(1, a, BP1))), "machine").verdict == "pass"
    both = only(judge(sc, captures=capture(dhcp(1, a, BP1), dhcp(2, a, BP2))), "machine")
    assert both.verdict == "fail" and "bp1, bp2" in both.detail
    assert only(judge(sc), "machine").verdict == "fail"  # nobody answered


def test_an_address_offer_is_not_a_proxy_answer() -> None:
    sc = scenario("{rules: [], machines: [{name: a, booted_via: bp1}]}")
    site = dhcp(1, mac_of(sc, "a"), "10.0.0.1", yiaddr="10.0.0.50", vendor=None)
    assert only(judge(sc, captures=capture(site)), "machine").verdict == "fail"


def test_never_answered_fails_on_an_offer_or_boot_files() -> None:
    sc = scenario("{rules: [], machines: [{name: s, never_answered: true}]}")
    s = mac_of(sc, "s")
    site = dhcp(1, s, "10.0.0.1", yiaddr="10.0.0.50", vendor=None)
    assert only(judge(sc, captures=capture(site)), "machine").verdict == "pass"
    offered = only(judge(sc, captures=capture(dhcp(4, s, BP1))), "machine")
    assert offered.verdict == "fail" and "frames 4" in offered.detail
    data = TftpEvent(frame=9, time=9.0, src_mac="02:00:00:00:00:02", dst_mac=s,
                     src_ip=BP1, dst_ip="10.0.0.50", sport=40000, dport=2000, opcode=3,
                     op_name="DATA", block=1)
    assert only(judge(sc, captures=capture(tftp=(data,))), "machine").verdict == "fail"


def test_received_proxy_offer_reads_what_the_machine_saw() -> None:
    sc = scenario("{rules: [], machines: [{name: a, received_proxy_offer: false}]}")
    a = mac_of(sc, "a")
    dropped = run_result(sc, machines=[machine(sc, "a", answered_by=[])])
    verdict = only(judge(sc, dropped, capture(dhcp(1, a, BP1))), "machine")
    assert verdict.verdict == "pass" and "dropped on the way" in verdict.detail
    got = run_result(sc, machines=[machine(sc, "a", answered_by=["bp1"])])
    assert only(judge(sc, got), "machine").verdict == "fail"


def test_ready_within_compares_the_machines_own_ready_time() -> None:
    sc = scenario("{rules: [], machines: [{name: a, ready_within: 30}]}")
    fast = run_result(sc, machines=[machine(sc, "a", ready_seconds=12.5)])
    assert only(judge(sc, fast), "machine").verdict == "pass"
    slow = run_result(sc, machines=[machine(sc, "a", ready_seconds=31.0)])
    assert only(judge(sc, slow), "machine").verdict == "fail"
    never = only(judge(sc, run_result(sc, machines=[machine(sc, "a")])), "machine")
    assert never.verdict == "fail" and "never Ready" in never.detail


# -- clusters ----------------------------------------------------------------------------
def test_cluster_ready_and_not_ready() -> None:
    sc = scenario("{rules: [], clusters: [{name: alpha}]}")
    assert only(judge(sc), "cluster").verdict == "pass"
    assert only(judge(sc, cp_state=cp(sc, phase="Pending")), "cluster").verdict == "fail"
    negated = scenario("{rules: [], clusters: [{name: alpha, ready: false}]}")
    assert only(judge(negated, cp_state=cp(sc, phase="Pending")), "cluster").verdict == "pass"
    assert only(judge(negated), "cluster").verdict == "fail"


def test_cluster_within_is_timed_from_its_first_power_on_to_cluster_ready() -> None:
    sc = scenario("{rules: [], clusters: [{name: alpha, within: 40}]}")
    powered = run_result(sc, machines=[machine(sc, "a", powered_at=1010.0)])
    in_time = cp(sc, events=[{"kind": "cluster.ready", "subject": "alpha", "time": 1045.0}])
    verdict = only(judge(sc, powered, cp_state=in_time), "cluster")
    assert verdict.verdict == "pass" and "35.0 s" in verdict.detail
    late = cp(sc, events=[{"kind": "cluster.ready", "subject": "alpha", "time": 1055.0}])
    failed = only(judge(sc, powered, cp_state=late), "cluster")
    assert failed.verdict == "fail" and "45.0 s" in failed.detail


def test_cluster_within_fails_without_a_ready_event() -> None:
    sc = scenario("{rules: [], clusters: [{name: alpha, within: 40}]}")
    powered = run_result(sc, machines=[machine(sc, "a", powered_at=1010.0)])
    failed = only(judge(sc, powered), "cluster")
    assert failed.verdict == "fail" and "never" in failed.detail


# -- conflicts ---------------------------------------------------------------------------
def test_conflict_must_name_both_proxies() -> None:
    sc = scenario("{rules: [], conflicts: [{between: [bp1, bp2]}]}")
    report = {"proxy": "bp1", "other_server": BP2, "mac": mac_of(sc, "a")}
    assert only(judge(sc, cp_state=cp(sc, conflicts=[report])), "conflict").verdict == "pass"
    other = {"proxy": "bp1", "other_server": ROGUE}
    assert only(judge(sc, cp_state=cp(sc, conflicts=[other])), "conflict").verdict == "fail"


def test_no_conflicts() -> None:
    sc = scenario("{rules: [], no_conflicts: true}")
    assert only(judge(sc), "conflict").verdict == "pass"
    report = {"proxy": "bp1", "other_server": BP2}
    assert only(judge(sc, cp_state=cp(sc, conflicts=[report])), "conflict").verdict == "fail"


@pytest.mark.parametrize("missing", [{}, {"error": "connection refused"}],
                         ids=["never-collected", "error"])
def test_without_control_plane_state_its_expectations_fail_with_that_reason(
        missing: dict[str, Any]) -> None:
    sc = scenario("{rules: [], no_conflicts: true, conflicts: [{between: [bp1, bp2]}], "
                  "clusters: [{name: alpha, ready: false}], "
                  "machines: [{name: a, state: Pending}]}")
    judged = judge(sc, cp_state=missing)
    assert len(judged) == 4
    for verdict in judged:
        assert verdict.verdict == "fail", verdict
        assert "Control Plane state could not be collected" in verdict.detail
    if missing:
        assert all("connection refused" in v.detail for v in judged)


# -- rules -------------------------------------------------------------------------------
def rule_verdict(sc: Scenario, *findings: Finding) -> ExpectationResult:
    """The one rule expectation of ``sc``, judged on a run whose capture gave ``findings``
    (none: no rule was judged at all)."""
    return only(judge(sc, run_result(sc, findings=list(findings))), "rule")


NAMED, RELAYED = "{rules: [SITE-1]}", "{rules: [RELAY-1]}"
MUST, VIOLATION = "{rules: [MUST]}", "{rules: [], violations: [SITE-1]}"
TWO_ANSWER = f"2 ProxyDHCP servers answer 52:54:00:00:00:00: ['{BP1}', '{ROGUE}']"


@pytest.mark.parametrize(("expect", "findings", "verdict", "details"), [
    # a named rule holds only when it passed somewhere and failed nowhere
    (NAMED, [finding("SITE-1", Verdict.PASS)], "pass", ()),
    (NAMED, [finding("SITE-1", Verdict.PASS),
             finding("SITE-1", Verdict.FAIL, message="two answer")], "fail", ("two answer",)),
    # a named rule that never applied fails
    (RELAYED, [finding("RELAY-1", Verdict.NOT_APPLICABLE, message="no relayed packet")],
     "fail", ("RELAY-1 never applied in this run", "no relayed packet")),
    (RELAYED, [], "fail", ("never applied",)),
    # MUST fails on a MUST failure and when nothing was judged
    (MUST, [finding("OFFER-2", Verdict.PASS), finding("CLI-1", Verdict.FAIL, Level.SHOULD),
            finding("RELAY-1", Verdict.NOT_APPLICABLE)], "pass", ()),
    (MUST, [finding("OFFER-2", Verdict.FAIL, message="yiaddr set")], "fail", ("yiaddr set",)),
    (MUST, [], "fail", ("no capture was judged",)),
    # an expected violation passes only when the rule failed, and says where
    (VIOLATION, [finding("SITE-1", Verdict.FAIL, message=TWO_ANSWER, frames=(7, 9))],
     "pass", ("frames 7, 9", "lan", f"bp1 ({BP1})", ROGUE)),
    (VIOLATION, [finding("SITE-1", Verdict.PASS, message="3 clients")],
     "fail", ("SITE-1 did not fail",)),
    (VIOLATION, [], "fail", ("never applied",)),
], ids=["named-passed", "named-failed-somewhere", "named-not-applicable", "named-nothing-judged",
        "must-held", "must-failed", "must-nothing-judged", "violation-seen",
        "violation-missed", "violation-nothing-judged"])
def test_a_rule_expectation_is_judged_on_the_findings(
        expect: str, findings: list[Finding], verdict: str, details: tuple[str, ...]) -> None:
    judged = rule_verdict(scenario(expect), *findings)
    assert judged.verdict == verdict, judged
    for text in details:
        assert text in judged.detail


def test_an_expected_violation_does_not_fail_must() -> None:
    sc = scenario("{rules: [MUST], violations: [SITE-1]}")
    result = run_result(sc, findings=[finding("SITE-1", Verdict.FAIL),
                                      finding("OFFER-2", Verdict.PASS)])
    judged = [r for r in judge(sc, result) if r.kind == "rule"]
    assert [(r.subject, r.verdict) for r in judged] == [("MUST", "pass"), ("SITE-1", "pass")]
    other = run_result(sc, findings=[finding("SITE-1", Verdict.FAIL),
                                     finding("SITE-2", Verdict.FAIL, message="E55")])
    must = next(r for r in judge(sc, other) if r.subject == "MUST")
    assert must.verdict == "fail" and "SITE-2" in must.detail and "SITE-1" not in must.detail


def test_a_run_error_is_a_failed_expectation() -> None:
    sc = scenario("{rules: []}")
    errored = run_result(sc)
    errored.error = "FlexlabError: boom"
    assert only(judge(sc, errored), "run").detail == "FlexlabError: boom"
