"""The catalogue matches CONFORMANCE.md and every catalogued rule is implemented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.capture.events import Capture
from harness.rules import RULES, RulesError, check_capture
from harness.rules.engine import CHECKS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
CANDIDATES = [ROOT / "docs" / "CONFORMANCE.md", Path("/work/shared/CONFORMANCE.md")]


def test_every_rule_is_implemented() -> None:
    assert set(CHECKS) == set(RULES)
    for r in RULES.values():
        assert r.statement and r.citation, r.id


def test_ids_match_conformance_document() -> None:
    doc = next((p for p in CANDIDATES if p.exists()), None)
    if doc is None:
        pytest.skip("CONFORMANCE.md not found in docs/ or /work/shared")
    ids = set(re.findall(r"^- ([A-Z0-9]+-\d+) ", doc.read_text(), re.M))
    assert ids == set(RULES)


def test_unknown_rule_is_refused() -> None:
    with pytest.raises(RulesError, match="NOPE-1"):
        check_capture(Capture(path="x", frames=0), rules=["NOPE-1"])


def test_empty_capture_gives_only_not_applicable() -> None:
    report = check_capture(Capture(path="x", frames=0))
    assert {f.verdict.value for f in report.findings} == {"not-applicable"}
    assert len(report.findings) == len(RULES)


def test_context_normalises_macs() -> None:
    from harness.rules import RuleContext

    ctx = RuleContext(serves={"10.0.0.2": frozenset({"52-54-00-AA-BB-CC"})})
    assert ctx.serves["10.0.0.2"] == {"52:54:00:aa:bb:cc"}


def test_menu_types_parse_boot_menu() -> None:
    from harness.rules.checks_ack4011 import menu_types

    assert menu_types(b"\x80\x00\x04boot\x00\x00\x00") == {0x8000, 0}
    assert menu_types(None) == set()
    assert menu_types(b"\x80") == set()
