"""docs/SCENARIOS.md lists every scenario file, once, with its tier, and no file that is gone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.scenario.loader import load_scenario

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([*ROOT.glob("scenarios/*.yaml"), *ROOT.glob("scenarios/vm/*.yaml")])
ROW = re.compile(r"^\| ([a-z0-9-]+) \| .+ \| (sim|vm) \| .+ \|$", re.M)


def rows() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, tier in ROW.findall((ROOT / "docs" / "SCENARIOS.md").read_text()):
        out.setdefault(name, []).append(tier)
    return out


def test_every_scenario_has_one_row_with_its_tier() -> None:
    table = rows()
    problems = []
    for path in FILES:
        scenario = load_scenario(path)
        tiers = table.get(scenario.name, [])
        if tiers != [scenario.tier]:
            problems.append(f"{path.relative_to(ROOT)}: rows {tiers}, tier {scenario.tier}")
    assert not problems, ("docs/SCENARIOS.md must have one row per scenario (scenario | guide "
                          "requirement | tier | what is asserted): " + "; ".join(problems))


def test_no_row_for_a_scenario_that_is_gone() -> None:
    names = {load_scenario(p).name for p in FILES}
    assert set(rows()) <= names, sorted(set(rows()) - names)


def test_every_scenario_says_what_it_proves() -> None:
    assert [p.name for p in FILES if not load_scenario(p).description.strip()] == []
