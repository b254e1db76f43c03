"""Run the rules over a decoded capture: ``check_capture``."""

from __future__ import annotations

from collections.abc import Iterable

from harness.capture.events import Capture

# Importing the check modules registers their rules.
from harness.rules import (  # noqa: F401
    checks_ack4011,
    checks_client,
    checks_ipxe,
    checks_offer,
    checks_relay,
    checks_silent,
    checks_site,
    checks_site_services,
    checks_tftp,
    checks_time,
)
from harness.rules.analysis import Analysis
from harness.rules.catalog import RULES
from harness.rules.context import RuleContext
from harness.rules.errors import RulesError
from harness.rules.judge import CHECKS, Judge
from harness.rules.model import Report


def check_capture(
    capture: Capture,
    context: RuleContext | None = None,
    rules: Iterable[str] | None = None,
) -> Report:
    """Judge ``capture`` against the catalogue (or the listed rule ids).

    Every selected rule yields at least one finding, so a report always shows
    what was checked, what failed and what could not be applied.
    """
    selected = list(rules) if rules is not None else list(RULES)
    unknown = [r for r in selected if r not in RULES]
    if unknown:
        raise RulesError(f"unknown rule id(s) {unknown}; known ids are listed in CONFORMANCE.md")
    missing = [r for r in selected if r not in CHECKS]
    if missing:
        raise RulesError(f"rule(s) {missing} are catalogued but not implemented")
    an = Analysis(capture, context or RuleContext())
    report = Report(path=capture.path, frames=capture.frames, servers={
        "proxies": sorted(an.proxies),
        "address_servers": sorted(an.address_servers),
        "combined_servers": sorted(an.combined_servers),
    })
    for rule_id in selected:
        fn, unit = CHECKS[rule_id]
        judge = Judge(rule_id)
        fn(an, judge)
        report.findings.extend(judge.findings(unit))
    return report
