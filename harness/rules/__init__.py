"""Conformance rules for Boot Proxies, judged on decoded packet captures."""

from harness.rules.catalog import RULES, rule
from harness.rules.context import RuleContext
from harness.rules.engine import check_capture
from harness.rules.errors import RulesError
from harness.rules.model import Finding, Level, Report, Rule, Verdict

__all__ = [
    "RULES",
    "Finding",
    "Level",
    "Report",
    "Rule",
    "RuleContext",
    "RulesError",
    "Verdict",
    "check_capture",
    "rule",
]
