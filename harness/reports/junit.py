"""JUnit XML for CI systems (GitLab, Jenkins, GitHub test reporters): one ``<testcase>``
per scenario expectation and one per conformance rule, so a CI page lists each check
by name instead of one opaque job status.

Rules map to JUnit as check-pcap's exit status does: a MUST rule with a FAIL finding
is a ``<failure>``; a SHOULD/MAY failure is a passing case with the warning in
``<system-out>`` (it does not fail the run, so it must not turn CI red); a rule that
never applied is ``<skipped>``. A run that could not finish adds an ``<error>`` case.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path

from harness.judge.result import RunResult
from harness.rules.model import Finding, Level, Report, Verdict

MESSAGE_MAX = 500  # a failure message is a one-line summary; the detail goes in the body


def _case(suite: ET.Element, classname: str, name: str, seconds: float = 0.0) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=name,
                         time=f"{seconds:.3f}")


def _fail(case: ET.Element, tag: str, message: str, body: str = "") -> None:
    el = ET.SubElement(case, tag, message=message[:MESSAGE_MAX])
    el.text = body or message


def _rule_cases(suite: ET.Element, classname: str, findings: Sequence[Finding]) -> None:
    """One case per rule id, in first-seen order."""
    by_rule: dict[str, list[Finding]] = {}
    for f in findings:
        by_rule.setdefault(f.rule_id, []).append(f)
    for rule_id, found in by_rule.items():
        case = _case(suite, classname, rule_id)
        failed = [f for f in found if f.verdict is Verdict.FAIL]
        lines = "\n".join(f"{f.verdict.value}: {f.message}"
                          + (f" (client {f.client})" if f.client else "")
                          + (f" frames {','.join(map(str, f.frames[:20]))}" if f.frames else "")
                          for f in found)
        if failed and failed[0].level is Level.MUST:
            _fail(case, "failure", f"{rule_id} MUST: {failed[0].message}", lines)
        elif failed:
            out = ET.SubElement(case, "system-out")
            out.text = f"warning ({failed[0].level.value}, does not fail the run)\n{lines}"
        elif all(f.verdict is Verdict.NOT_APPLICABLE for f in found):
            ET.SubElement(case, "skipped", message=found[0].message[:MESSAGE_MAX])
        else:
            out = ET.SubElement(case, "system-out")
            out.text = lines


def _finish(suite: ET.Element) -> ET.Element:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    for tag, attr in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        suite.set(attr, str(sum(1 for c in cases if c.find(tag) is not None)))
    return suite


def run_suite(result: RunResult) -> ET.Element:
    """The ``<testsuite>`` of one scenario run."""
    suite = ET.Element("testsuite", name=result.scenario_name, time=f"{result.duration:.3f}",
                       hostname=result.lab_id or "none")
    for exp in result.expectations:
        case = _case(suite, f"{result.scenario_name}.{exp.kind}",
                     f"{exp.subject}: {exp.description}")
        if exp.verdict == "fail":
            _fail(case, "failure", exp.detail or exp.description)
        elif exp.verdict == "skip":
            ET.SubElement(case, "skipped", message=(exp.detail or "skipped")[:MESSAGE_MAX])
    for segment, findings in result.findings.items():
        _rule_cases(suite, f"{result.scenario_name}.rules.{segment}", findings)
    if result.error:
        _fail(_case(suite, result.scenario_name, "run"), "error", result.error)
    return _finish(suite)


def report_suite(report: Report, name: str = "check-pcap") -> ET.Element:
    """The ``<testsuite>`` of one capture judged by ``flexlab check-pcap``."""
    suite = ET.Element("testsuite", name=f"{name} {report.path}", time="0.000")
    _rule_cases(suite, f"{name}.rules", report.findings)
    return _finish(suite)


def write_junit(suites: Iterable[ET.Element], path: Path) -> Path:
    """Write ``<testsuites>`` holding ``suites`` to ``path`` (parents created)."""
    root = ET.Element("testsuites", name="flexlab")
    for suite in suites:
        root.append(suite)
    for attr in ("tests", "failures", "errors", "skipped"):
        root.set(attr, str(sum(int(s.get(attr, "0")) for s in root)))
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
