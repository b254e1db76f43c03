"""JUnit XML of a run: one case per expectation and per rule (per segment); MUST rule
failures and failed expectations fail, SHOULD failures only warn, rules that never
applied are skipped, a run error is an error case."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.judge.result import RunResult
from harness.reports.junit import run_suite, write_junit

pytestmark = pytest.mark.unit


def _cases(root: ET.Element) -> dict[str, ET.Element]:
    return {f"{c.get('classname')}::{c.get('name')}": c for c in root.iter("testcase")}


def test_run_junit_has_a_case_per_expectation_and_rule(sample_run: RunResult,
                                                        tmp_path: Path) -> None:
    path = write_junit([run_suite(sample_run)], tmp_path / "j" / "junit.xml")
    root = ET.parse(path).getroot()
    cases = _cases(root)
    rules = {(seg, f.rule_id) for seg, fs in sample_run.findings.items() for f in fs}
    assert len(cases) == len(sample_run.expectations) + len(rules)
    failed_exps = [e for e in sample_run.expectations if e.verdict == "fail"]
    must_failed = {(seg, f.rule_id) for seg, fs in sample_run.findings.items() for f in fs
                   if f.verdict.value == "fail" and f.level.value == "MUST"}
    assert failed_exps and must_failed  # the fixture fails both ways
    assert int(root.get("failures", "0")) == len(failed_exps) + len(must_failed)
    for seg, rule_id in must_failed:
        case = cases[f"{sample_run.scenario_name}.rules.{seg}::{rule_id}"]
        assert case.find("failure") is not None


def test_a_run_error_is_an_error_case(sample_run: RunResult) -> None:
    broken = dataclasses.replace(sample_run, error="lab: dnsmasq exited (status 2)")
    suite = run_suite(broken)
    assert suite.get("errors") == "1"
    (case,) = [c for c in suite.iter("testcase") if c.find("error") is not None]
    assert "dnsmasq exited" in (case.find("error").get("message") or "")  # type: ignore[union-attr]
