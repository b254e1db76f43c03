"""The catalogue matches CONFORMANCE.md and every catalogued rule is implemented."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from harness.capture.events import Capture
from harness.rules import RULES, RulesError, check_capture
from harness.rules.engine import CHECKS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
OWN_COPY = ROOT / "docs" / "CONFORMANCE.md"
# The team's shared copy sits beside the checkout; FLEXLAB_SHARED_DIR names it elsewhere.
SHARED_COPY = Path(os.environ.get("FLEXLAB_SHARED_DIR", ROOT.parent / "shared")) / "CONFORMANCE.md"
RULE_ID = re.compile(r"^- ([A-Z0-9]+-\d+) ", re.M)


def test_every_rule_is_implemented() -> None:
    assert set(CHECKS) == set(RULES)
    for r in RULES.values():
        assert r.statement and r.citation, r.id


def test_ids_match_conformance_document() -> None:
    """The project's own rules document lists exactly the catalogued ids."""
    ids = set(RULE_ID.findall(OWN_COPY.read_text()))
    assert ids == set(RULES), (
        f"only in docs/CONFORMANCE.md: {sorted(ids - set(RULES))}; "
        f"only in the catalogue: {sorted(set(RULES) - ids)}"
    )


def test_levels_match_conformance_document() -> None:
    """A rule the document calls MUST (or SHOULD) has that level in the catalogue."""
    text = OWN_COPY.read_text()
    for m in re.finditer(r"^- ([A-Z0-9]+-\d+) (MUST|SHOULD)\b", text, re.M):
        assert RULES[m.group(1)].level.value == m.group(2), m.group(1)


def test_own_copy_equals_shared_copy() -> None:
    """docs/CONFORMANCE.md is kept equal to the team's shared copy, where one exists."""
    if not SHARED_COPY.exists():
        pytest.skip(f"no shared copy at {SHARED_COPY} (set FLEXLAB_SHARED_DIR to compare)")
    assert OWN_COPY.read_text() == SHARED_COPY.read_text(), (
        "docs/CONFORMANCE.md differs from the shared copy: copy the shared one over "
        "and sync harness/rules/catalog.py"
    )


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
