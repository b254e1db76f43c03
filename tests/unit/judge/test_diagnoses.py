"""expect.diagnoses: a rule must FAIL, and one of its findings must say why."""

from __future__ import annotations

import pytest

from harness.judge.rule_verdicts import judge_rules
from harness.rules.model import Finding, Level, Verdict
from harness.scenario.model import DiagnosisExpectation, Expectations

pytestmark = pytest.mark.unit

RELAY = "the relay does not forward to the Boot Proxy"


def verdict(*findings: Finding) -> tuple[str, str]:
    expect = Expectations(rules=[], diagnoses=[DiagnosisExpectation(rule="SITE-3", says=RELAY)])
    (result,) = judge_rules(expect, {"core": list(findings)}, lambda ips: ips)
    return result.verdict, result.detail


def site3(verdict: Verdict, message: str) -> Finding:
    return Finding("SITE-3", Level.MUST, verdict, message)


def test_the_failure_with_its_diagnosis_passes() -> None:
    said = f"no ProxyDHCP offer although a Boot Proxy serves it: {RELAY} — relay 10.1.0.1"
    assert verdict(site3(Verdict.FAIL, said)) == ("pass", f"core: {said}")


def test_the_failure_without_the_diagnosis_fails() -> None:
    assert verdict(site3(Verdict.FAIL, "no address offer")) == (
        "fail", "SITE-3 failed, but no finding says it: core: no address offer")


def test_no_failure_at_all_fails() -> None:
    assert verdict(site3(Verdict.PASS, "3 clients checked")) == (
        "fail", "SITE-3 did not fail in this run")


def test_the_diagnosis_may_name_a_declared_party() -> None:
    """SITE-1's finding carries addresses; the report (and so the expectation) reads the
    declared proxy's name beside its address."""
    expect = Expectations(rules=[], diagnoses=[
        DiagnosisExpectation(rule="SITE-1", says="rogue (10.0.0.9)")])
    finding = Finding("SITE-1", Level.MUST, Verdict.FAIL,
                      "2 ProxyDHCP servers answer m: ['10.0.0.3', '10.0.0.9']")
    names = {"10.0.0.3": "bp1", "10.0.0.9": "rogue"}
    (result,) = judge_rules(expect, {"lan": [finding]},
                            lambda ips: [names.get(ip, ip) for ip in ips])
    assert result.verdict == "pass", result.detail
    assert "bp1 (10.0.0.3)" in result.detail and "rogue (10.0.0.9)" in result.detail
