"""Scenario files: the library loads; every bad example gives one file:line message."""

from pathlib import Path

import pytest

from harness.scenario import ScenarioError, load_scenario, parse_scenario
from harness.scenario.checks import machine_macs
from harness.scenario.schema import SCHEMA_PATH, schema_text

pytestmark = pytest.mark.unit
ROOT = Path(__file__).parents[3]
BAD = ROOT / "fixtures" / "scenarios-bad"
EXPECTED = {
    line.split(":", 1)[0]: line for line in (BAD / "EXPECTED.txt").read_text().splitlines()
}


@pytest.mark.parametrize("path", sorted(ROOT.glob("scenarios/**/*.yaml")), ids=lambda p: p.stem)
def test_library_scenarios_are_valid(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_scenario_gives_one_clear_file_line_message(path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    expected = EXPECTED[path.name]
    assert str(info.value).startswith(f"{path.parent}/{expected}"), str(info.value)
    assert "\n" not in str(info.value)


def test_every_bad_example_has_an_expected_message() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in BAD.glob("*.yaml"))


def test_committed_schema_is_generated_from_the_models() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), "run `flexlab schema --write`"


def test_derived_macs_are_unique_and_stable() -> None:
    text = """
name: many
segments: [{name: lan}]
machines:
  - {name: a, segment: lan, count: 300}
  - {name: b, segment: lan, count: 300}
"""
    macs = machine_macs(parse_scenario(text))
    flat = macs["a"] + macs["b"]
    assert len(set(flat)) == 600
    assert machine_macs(parse_scenario(text)) == macs
    assert all(m.startswith("52:54:00:") for m in flat)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "nope.yaml")


def test_loaded_scenario_is_plain_frozen_data() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "smoke.yaml")
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type is internal
        scenario.name = "other"  # type: ignore[misc]
