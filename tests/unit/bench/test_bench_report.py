"""Boot-storm helpers and the BENCHMARKS.md renderer, on fixed data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.report import fmt, render, run_verdict, runs_verdict, summary_rows
from bench.storm import retransmissions, storm_scenario, summarise_run
from harness.judge.result import MachineResult, RunResult, TimelineEvent

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]


def _machine(name: str, events: list[tuple[str, str]], ready: float | None) -> MachineResult:
    return MachineResult(
        name=name, mac="52:54:00:00:00:01", firmware="uefi-x64", segment="lan",
        cluster="storm", driver="sim", state="Ready" if ready is not None else "Booting",
        ready_seconds=ready,
        timeline=[TimelineEvent(t=i * 0.1, kind=k, summary=s) for i, (k, s) in enumerate(events)])


def test_retransmissions_count_resends_without_answer() -> None:
    clean = _machine("a", [("state", "dhcp-discover"), ("sent", "DISCOVER"),
                           ("received", "OFFER"), ("sent", "REQUEST"), ("received", "ACK"),
                           ("state", "dhcp-discover"), ("sent", "DISCOVER"),
                           ("received", "OFFER")], 1.0)
    lossy = _machine("b", [("state", "dhcp-discover"), ("sent", "DISCOVER"),
                           ("received", "OFFER"), ("sent", "DISCOVER"), ("sent", "DISCOVER"),
                           ("received", "OFFER"), ("state", "dhcp-request"),
                           ("sent", "REQUEST"), ("sent", "REQUEST"), ("received", "ACK"),
                           ("state", "pxe-request"), ("sent", "REQUEST"),
                           ("received", "ACK")], 2.0)
    assert retransmissions(clean) == 0
    assert retransmissions(lossy) == 3


def test_storm_scenario_resizes_every_group() -> None:
    scenario = storm_scenario(7)
    assert [m.count for m in scenario.machines] == [7, 7]
    assert scenario.name == "boot-storm-14"


def _run(machines: list[MachineResult]) -> RunResult:
    return RunResult(scenario_name="s", scenario_file=None, scenario={"time_scale": 0.25},
                     tier="sim", lab_id="x", started=0.0, finished=12.0, machines=machines,
                     phases=[("machines", 1.0, 9.0)])


def test_summarise_run_reports_all_ready_time_and_percentiles() -> None:
    ms = [_machine(f"m{i}", [("sent", "DISCOVER"), ("received", "OFFER")], float(i + 1))
          for i in range(4)]
    doc = summarise_run(_run(ms), 2)
    assert doc["ready"] == 4 and doc["not_ready"] == 0
    assert doc["time_to_all_ready_s"] == 4.0
    assert doc["ready_s"] == {"p50": 2.0, "p95": 4.0, "p99": 4.0}
    assert doc["phases_s"] == {"machines": 8.0}


def test_summarise_run_without_all_ready_has_no_all_ready_time() -> None:
    ms = [_machine("a", [], 1.0), _machine("b", [], None)]
    doc = summarise_run(_run(ms), 1)
    assert doc["not_ready"] == 1 and doc["time_to_all_ready_s"] is None


SYSTEM = {"name": "flexlab Boot Proxy", "version": "0.1", "offers_per_s": 3000.0,
          "acks_per_s": 4000.0, "drop_ratio": 0.001,
          "latency_ms": {"p50": 0.2, "p95": 0.9, "p99": 3.1},
          "ack_drop_ratio": 0.0, "ack_latency_ms": {"p50": 0.3, "p95": 1.0, "p99": 2.0},
          "offer_steps": [{"offered_per_s": 3000, "sent": 12000, "answered_per_s": 3000.0,
                           "drop_ratio": 0.001,
                           "latency_ms": {"p50": 0.2, "p95": 0.9, "p99": 3.1}}],
          "ack_steps": []}


def test_render_has_machine_tables_and_honest_gaps() -> None:
    results = {
        "machine": {"nproc": 2, "kernel": "6.1", "date_utc": "2026-11-25 23:00:00Z"},
        "proxydhcp": {"plan": {"step_seconds": 4, "clients": 1000}, "systems": [SYSTEM]},
        "tftp_http": {"error": "BenchError: tftpd-hpa missing"},
        "vm": {"subject": "1 VM", "reason": "no VM driver"},
    }
    doc = render(results)
    assert "- nproc: 2" in doc
    assert "| flexlab Boot Proxy | 0.1 | 3,000 | 0.10 % | 0.20 / 0.90 / 3.10 |" in doc
    assert "Not measured: BenchError: tftpd-hpa missing" in doc
    assert "Not measured: no VM driver" in doc
    rows = summary_rows(results)
    assert rows[0][0] == "proxydhcp" and "3,000 offers/s" in rows[0][2]
    assert any("not measured" in r[2] for r in rows)


def test_fmt_marks_missing_figures() -> None:
    assert fmt(None) == "\u2013"
    assert fmt(1234.5, 1) == "1,234.5"


def test_one_vm_scenario_keeps_one_machine_and_its_expectations() -> None:
    from bench.vmboot import one_vm_scenario

    scenario = one_vm_scenario("bios", timeout=123)
    assert [m.name for m in scenario.machines] == ["bios"]
    assert [e.name for e in scenario.expect.machines] == ["bios"]
    assert all(s.machines == ["bios"] for s in scenario.steps)
    assert scenario.timeout == 123 and scenario.tier == "vm"


def _storm_doc(machines: int, verdict: str, failed: list[str]) -> dict[str, object]:
    return {"machines": machines, "per_kind": machines // 2, "ready": machines,
            "not_ready": 0, "time_to_all_ready_s": 84.56,
            "ready_s": {"p50": 20.2, "p95": 83.7, "p99": 84.5}, "dhcp_retransmissions": 1,
            "machines_with_retransmissions": 1, "phases_s": {}, "wall_s": 117.5,
            "verdict": verdict, "error": None, "failed_expectations": failed,
            "time_scale": 0.25}


def test_every_summary_row_with_a_verdict_shows_that_runs_verdict(tmp_path: Path) -> None:
    """A storm whose machines all reached Ready but whose run FAILED reads FAIL, with why;
    the VM row shows its runs' verdicts — from a results JSON as bench/run.py writes it."""
    results = {
        "storm": [_storm_doc(200, "pass", []),
                  _storm_doc(1000, "fail", ["rule MUST: TFTP-1: port changed | twice",
                                            "rule MUST: TFTP-5: late"])],
        "vm": {"subject": "1 VM", "ready_s": 12.8, "verdict": "pass",
               "runs": [{"verdict": "pass"}, {"verdict": "fail"}, {"verdict": "pass"}]},
    }
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(results))
    rows = summary_rows(json.loads(path.read_text()))
    storm200, storm1000, vm = rows
    assert storm200[2].startswith("PASS — 200 of 200 Ready")
    assert storm1000[2].startswith("FAIL (rule MUST: TFTP-1: port changed | twice (+1 more)) "
                                   "— 1000 of 1000 Ready")
    assert vm[2] == "FAIL: 1 of 3 runs did not pass (pass, fail, pass) — 12.8 s power-on→Ready"
    doc = render(json.loads(path.read_text()))
    assert "| boot storm | 1000 sim machines | FAIL (rule MUST: TFTP-1: port changed \\| twice" \
        in doc  # a | in the reason does not split the Markdown row


def test_a_run_error_is_the_reason_and_a_row_without_verdict_has_none() -> None:
    assert run_verdict({"verdict": "fail", "error": "lab build failed",
                        "failed_expectations": ["x"]}) == "FAIL (lab build failed)"
    assert run_verdict({"verdict": "pass"}) == "PASS"
    assert run_verdict({"offers_per_s": 3}) is None
    results = {"proxydhcp": {"plan": {}, "systems": [SYSTEM]}}
    assert summary_rows(results)[0][2].startswith("3,000 offers/s")


def test_committed_results_show_each_storm_runs_verdict() -> None:
    """Whatever bench/results/storm*.json hold now, each storm row leads with its run's
    verdict (it once read "1000 Ready" for a run whose verdict was FAIL)."""
    from bench.report import load_results

    results = load_results(REPO / "bench" / "results")
    storms = results["storm"]
    rows = [r for r in summary_rows(results) if r[0] == "boot storm"]
    assert len(rows) == len(storms) > 0
    for storm, (_, _, figure) in zip(storms, rows, strict=True):
        expected = str(storm["verdict"]).upper() if "machines" in storm else "not measured"
        assert figure.startswith(expected), figure


def test_a_storm_ab_file_is_no_storm_row(tmp_path: Path) -> None:
    """bench/storm_ab.py's files compare configurations; read as storms they showed up as
    "not measured: None" rows in the summary."""
    from bench.report import load_results
    (tmp_path / "storm-1000.json").write_text(json.dumps(_storm_doc(1000, "pass", [])))
    (tmp_path / "storm-1000-ab-x.json").write_text(json.dumps(
        {"command": "python bench/storm_ab.py", "configs": {"before": {}, "after": {}}}))
    results = load_results(tmp_path)
    rows = [r for r in summary_rows(results) if r[0] == "boot storm"]
    assert [r[2].split(" ")[0] for r in rows] == ["PASS"]
    assert "storm-1000-ab-x.json" in results["files"]


def test_a_site_scenario_row_leads_with_each_runs_verdict(tmp_path: Path) -> None:
    """bench/site_scenarios.py's row for a scenario: a median over three runs, one of which
    failed, reads FAIL with every run's verdict in order — from its results JSON."""
    from bench.site_scenarios import summary_line

    doc = {"scenarios": [
        {"scenario": "scenarios/hybrid-site.yaml", "verdicts": ["pass", "fail", "pass"],
         "wall_s": {"median": 6.09, "min": 6.06, "max": 6.4}},
        {"scenario": "scenarios/kea-site.yaml", "verdicts": ["pass", "pass", "pass"],
         "wall_s": {"median": 4.4, "min": 4.22, "max": 4.6}},
    ]}
    path = tmp_path / "site-scenarios.json"
    path.write_text(json.dumps(doc))
    hybrid, kea = (summary_line(row) for row in json.loads(path.read_text())["scenarios"])
    assert hybrid == ("scenarios/hybrid-site.yaml: FAIL: 1 of 3 runs did not pass "
                      "(pass, fail, pass) — wall median 6.09 s (6.06-6.4)")
    assert kea.startswith("scenarios/kea-site.yaml: PASS: all 3 runs passed — wall median")
    assert run_verdict({"verdict": "fail"}) == "FAIL"
    assert runs_verdict([]) == "FAIL: no run"


def test_the_vm_ab_section_shows_each_configuration_and_counts_boots_not_ready() -> None:
    from bench.report import DASH, _vm_ab

    doc = {"why": "which kernel?", "configs": {"a": {"env": {"K": "debian"}}, "b": {"env": {}}},
           "summary": {
               "a": {"bios": {"ready_s": {"median": 14.7, "min": 14.2, "max": 15.1, "n": 5},
                              "boots_not_ready": 0,
                              "console_s_median": {"kernel_console": 8.06, "init": 10.23}}},
               "b": {"bios": {"ready_s": {"median": None, "min": None, "max": None, "n": 0},
                              "boots_not_ready": 2, "console_s_median": {}}}}}
    text = "\n".join(_vm_ab(doc))
    assert "Question: which kernel?" in text
    assert "| a (K=debian) | bios | 14.7 (14.2-15.1) | 5 | 0 | 8.06 | 10.23 |" in text
    # a configuration whose boots never got Ready shows no time, and says how many
    d = DASH
    assert f"| b | bios | {d} ({d}-{d}) | 0 | 2 | {d} | {d} |" in text


def test_the_ovmf_boots_get_their_own_summary_row_and_verdict() -> None:
    ovmf = {"subject": "1 VM (OVMF)", "ready_s": 16.5,
            "runs": [{"ready_s": 16.5, "verdict": "pass"}, {"ready_s": None, "verdict": "fail"}]}
    vm = {"subject": "1 VM (SeaBIOS)", "ready_s": 8.2, "runs": [{"ready_s": 8.2,
                                                                 "verdict": "pass"}],
          "ovmf": ovmf}
    rows = [r for r in summary_rows({"vm": vm}) if r[0] == "vm boot"]
    assert [r[1] for r in rows] == ["1 VM (SeaBIOS)", "1 VM (OVMF)"]
    assert rows[0][2].startswith("PASS") and "8.2 s" in rows[0][2]
    assert rows[1][2].startswith("FAIL") and "16.5 s" in rows[1][2]  # one boot failed


def test_every_vm_ab_file_gets_a_section_and_older_ab_files_do_not(tmp_path: Path) -> None:
    from bench.report import load_results

    ab = {"configs": {"a": {"env": {}}}, "summary": {"a": {"bios": {
        "ready_s": {"median": 8.5, "min": 8.0, "max": 8.8, "n": 5}, "boots_not_ready": 0,
        "console_s_median": {}}}}}
    (tmp_path / "vmboot-kernel-ab.json").write_text(json.dumps(ab))
    (tmp_path / "vmboot-rng-ab.json").write_text(json.dumps(ab))
    (tmp_path / "vmboot-usb-ab.json").write_text(json.dumps({"variants": {}}))  # hand-made
    results = load_results(tmp_path)
    assert [d["_file"] for d in results["vm_ab"]] == ["vmboot-kernel-ab.json",
                                                      "vmboot-rng-ab.json"]
    text = render(results)
    assert "configurations in turn (vmboot-kernel-ab.json)" in text
    assert "configurations in turn (vmboot-rng-ab.json)" in text
    assert "configurations in turn (vmboot-usb-ab.json)" not in text


def test_a_storm_says_who_used_the_cpu_and_an_older_file_says_nothing(tmp_path: Path) -> None:
    """The storm's time on a 2-core host is everyone's CPU divided by two: the section
    names each share of the median run; a file from before the sampler has no such line."""
    new = {**_storm_doc(1000, "pass", []), "harness_cpu_s": {"machines": 17.92},
           "services_cpu_s": {"control plane": 6.48, "boot proxy": 8.26}}
    old = _storm_doc(200, "pass", [])
    doc = render({"storm": [old, new]})
    assert ("CPU seconds of the median run: harness (the emulators) 17.9 in the machines "
            "phase, control plane 6.5, boot proxy 8.3.") in doc
    assert doc.count("CPU seconds of the median run") == 1
