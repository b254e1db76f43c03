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


def rule_entries(text: str) -> dict[str, str]:
    """Each rule's entry in a CONFORMANCE.md: its ``- ID ...`` line with the indented
    lines continuing it, by id."""
    entries: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines(keepends=True):
        m = RULE_ID.match(line)
        if m:
            current = m.group(1)
            entries[current] = line
        elif current is not None and line.startswith("  "):
            entries[current] += line
        else:
            current = None
    return entries


def without_rules(text: str, ids: set[str]) -> str:
    """``text`` with the entries of the rules ``ids`` taken out."""
    for rule_id, entry in rule_entries(text).items():
        if rule_id in ids:
            text = text.replace(entry, "", 1)
    return text


def shared_copy_problems(own: str, shared: str) -> list[str]:
    """Why the repo's CONFORMANCE.md does not match the team's shared copy.

    The repo may add rules of its own (SITE-4); everything else must be equal: every
    shared rule present with the same text, and the text around the rules unchanged."""
    mine, theirs = rule_entries(own), rule_entries(shared)
    problems = [f"{r} is in the shared copy but missing here" for r in theirs if r not in mine]
    problems += [f"{r} differs from the shared copy" for r in theirs
                 if r in mine and mine[r] != theirs[r]]
    if not problems and without_rules(own, set(mine) - set(theirs)) != shared:
        problems.append("the text outside the rules differs from the shared copy")
    return problems


def test_own_copy_matches_shared_copy_besides_repo_additions() -> None:
    """docs/CONFORMANCE.md is kept equal to the team's shared copy, where one exists, but
    for rules the repo adds (each implemented and catalogued like the rest)."""
    if not SHARED_COPY.exists():
        pytest.skip(f"no shared copy at {SHARED_COPY} (set FLEXLAB_SHARED_DIR to compare)")
    problems = shared_copy_problems(OWN_COPY.read_text(), SHARED_COPY.read_text())
    assert not problems, (
        "docs/CONFORMANCE.md differs from the shared copy: " + "; ".join(problems)
        + " (copy the shared rules over and sync harness/rules/catalog.py)")


SHARED = """# rules
intro
- AB-1 MUST: one
  continued.
- AB-2 SHOULD: two
## next
"""


def test_the_comparison_tolerates_a_rule_the_repo_adds() -> None:
    own = SHARED.replace("## next\n", "- AB-3 MUST: ours\n## next\n")
    assert shared_copy_problems(own, SHARED) == []


def test_the_comparison_fails_a_changed_missing_or_moved_rule() -> None:
    changed = SHARED.replace("  continued.", "  changed.")
    assert shared_copy_problems(changed, SHARED) == ["AB-1 differs from the shared copy"]
    missing = SHARED.replace("- AB-2 SHOULD: two\n", "")
    assert shared_copy_problems(missing, SHARED) == ["AB-2 is in the shared copy but missing here"]
    prose = SHARED.replace("intro", "other intro")
    assert shared_copy_problems(prose, SHARED) == [
        "the text outside the rules differs from the shared copy"]


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
