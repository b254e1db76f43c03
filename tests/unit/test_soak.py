"""scripts/soak.py reads each round's JUnit into per-test outcomes: a test that passed in
one round and failed in another is a flake; node ids match pytest's (file::name)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest
from script_module import load_script

pytestmark = pytest.mark.unit


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest"
 errors="0" failures="1" skipped="1" tests="4">
<testcase classname="tests.unit.test_soak" name="test_ok[a b]" time="0.1"/>
<testcase classname="tests.sim.lab.test_cleanup" name="test_gone" time="1.0">
 <failure message="AssertionError: namespace left&#10;more">trace</failure></testcase>
<testcase classname="scenarios.smoke.yaml" name="smoke" time="3.0"><skipped message="x"/></testcase>
<testcase classname="scenarios.vm.vm-cluster.yaml" name="vm-cluster" time="9.0"/>
</testsuite></testsuites>"""


def _soak() -> ModuleType:
    return load_script("scripts/soak.py", "soak")


def test_round_outcomes_by_pytest_node_id(tmp_path: Path) -> None:
    junit = tmp_path / "soak-1.xml"
    junit.write_text(JUNIT)
    got = _soak().outcomes(junit)
    assert got == {
        "tests/unit/test_soak.py::test_ok[a b]": ("passed", ""),
        "tests/sim/lab/test_cleanup.py::test_gone": ("failed",
                                                     "AssertionError: namespace left"),
        "scenarios/smoke.yaml::smoke": ("skipped", ""),
        "scenarios/vm/vm-cluster.yaml::vm-cluster": ("passed", ""),
    }


def test_a_test_case_of_an_unknown_file_keeps_its_junit_names() -> None:
    case = ET.fromstring('<testcase classname="nowhere.mod" name="t"/>')
    assert _soak().node_id(case) == "nowhere.mod::t"


def test_kept_rounds_stay_on_disk_and_tally_again_from_junit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--keep-junit leaves each round's JUnit where it said, and --from-junit on those
    files gives the same tally: a soak can be built up over several sittings."""
    soak = _soak()

    def fake_round(index: int, workers: int, selection: list[str], reports: Path
                   ) -> tuple[float, dict[str, tuple[str, str]]]:
        junit = reports / f"soak-{index}.xml"
        junit.write_text(JUNIT)
        return 1.0, soak.outcomes(junit)

    monkeypatch.setattr(soak, "run_round", fake_round)
    kept = tmp_path / "rounds"
    out = tmp_path / "results"
    out.mkdir()
    first = soak.main(["--rounds", "2", "--keep-junit", str(kept),
                       "--out", str(out / "soak.json"), "--doc", str(tmp_path / "a.md")])
    files = sorted(kept.glob("soak-*.xml"))
    assert [f.name for f in files] == ["soak-1.xml", "soak-2.xml"]
    again = soak.main(["--from-junit", *map(str, files), "--out", str(out / "soak.json"),
                       "--doc", str(tmp_path / "b.md")])
    assert first == again == 1  # the failing test failed every round


def test_a_note_reaches_the_results_file_and_the_flake_table(tmp_path: Path) -> None:
    """A tally of rounds from two sittings says so (which commit each ran at): the
    command alone does not, so ``--note`` is kept in the file and shown in the doc."""
    junit = tmp_path / "soak-1.xml"
    junit.write_text(JUNIT)
    out = tmp_path / "results"
    out.mkdir()
    doc = tmp_path / "doc.md"
    _soak().main(["--from-junit", str(junit), "--out", str(out / "soak.json"),
                  "--doc", str(doc), "--note", "rounds 1-7 at abc1234, 8-20 at def5678"])
    assert json.loads((out / "soak.json").read_text())["note"] == \
        "rounds 1-7 at abc1234, 8-20 at def5678"
    assert "Note: rounds 1-7 at abc1234, 8-20 at def5678" in doc.read_text()
