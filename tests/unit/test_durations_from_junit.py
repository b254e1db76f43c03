"""scripts/durations-from-junit.py turns a whole-suite JUnit file into pytest-split's
``.test_durations``. Its node id -> JUnit key mapping is checked against pytest's own JUnit
writer on a tiny project with the awkward cases: a class, a parameter holding ``::`` (an
IPv6 address), a dotted directory name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from script_module import load_script

pytestmark = pytest.mark.unit


PROJECT = '''
import pytest

class TestGroup:
    def test_in_class(self):
        pass

@pytest.mark.parametrize("addr", ["fd00::9", "[fd00::9]:624", "10.0.0.1"])
def test_param(addr):
    pass

def test_plain():
    pass
'''


def _script() -> ModuleType:
    return load_script("scripts/durations-from-junit.py", "durations_from_junit")


def _pytest(root: Path, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "-p", "no:randomly", "-p", "no:xdist", *args], cwd=root,
                          capture_output=True, text=True, check=False).stdout


def test_every_node_id_finds_its_junit_time(tmp_path: Path) -> None:
    package = tmp_path / "tests" / "v1.2"
    package.mkdir(parents=True)
    (package / "test_sample.py").write_text(PROJECT)
    (tmp_path / "pytest.ini").write_text("[pytest]\njunit_family = xunit2\n")
    junit = tmp_path / "junit.xml"
    _pytest(tmp_path, "-q", f"--junitxml={junit}")
    nodeids = [line for line in _pytest(tmp_path, "--collect-only", "-q").splitlines()
               if "::" in line]
    assert len(nodeids) == 5, nodeids
    script = _script()
    found, unknown = script.durations(nodeids, script.junit_times(junit))
    assert unknown == [] and sorted(found) == sorted(nodeids)


def test_a_test_the_junit_file_never_ran_is_reported_not_guessed() -> None:
    script = _script()
    times = {("tests.unit.test_a", "test_x"): 1.25}
    found, unknown = script.durations(
        ["tests/unit/test_a.py::test_x", "tests/unit/test_a.py::test_new"], times)
    assert found == {"tests/unit/test_a.py::test_x": 1.25}
    assert unknown == ["tests/unit/test_a.py::test_new"]


def test_a_test_of_an_xdist_group_is_timed_under_its_own_name() -> None:
    """pytest-xdist's loadgroup appends "@group" to the names of grouped tests."""
    script = _script()
    times = {("tests.sim.lab.test_cleanup", "test_partial_build_is_undone@leftover-labs"): 3.5,
             ("tests.unit.test_b", "test_p[a@b]"): 0.5}
    grouped = "tests/sim/lab/test_cleanup.py::test_partial_build_is_undone"
    found, unknown = script.durations([grouped, "tests/unit/test_b.py::test_p[a@b]"], times)
    assert found == {grouped: 3.5, "tests/unit/test_b.py::test_p[a@b]": 0.5}
    assert unknown == []


def test_scenario_items_and_ipv6_parameters_map_to_junit_keys() -> None:
    key = _script().junit_key
    assert key("scenarios/vm/vm-cluster.yaml::vm-cluster") == (
        "scenarios.vm.vm-cluster.yaml", "vm-cluster")
    assert key("tests/unit/certify/test_ipmi.py::test_parse[[fd00::9]:624-want3]") == (
        "tests.unit.certify.test_ipmi", "test_parse[[fd00::9]:624-want3]")
    assert key("tests/a.py::TestC::test_m") == ("tests.a.TestC", "test_m")


def test_a_partial_junit_file_leaves_the_durations_as_they_were(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A later partial pytest run rewrites reports/junit.xml: 1 of 10 collected tests timed
    is refused and .test_durations keeps its content; the whole run's file is taken."""
    script = _script()
    nodeids = [f"tests/unit/test_a.py::test_{i}" for i in range(10)]
    monkeypatch.setattr(script, "_collect", lambda: nodeids)
    out = tmp_path / ".test_durations"
    out.write_text('{"kept": 1.0}\n')
    cases = "".join(f'<testcase classname="tests.unit.test_a" name="test_{i}" time="{i}.5"/>'
                    for i in range(10))
    partial, whole = tmp_path / "partial.xml", tmp_path / "whole.xml"
    partial.write_text(f'<testsuites><testsuite>{cases[:cases.index("/>") + 2]}'
                       "</testsuite></testsuites>")
    whole.write_text(f"<testsuites><testsuite>{cases}</testsuite></testsuites>")
    assert script.main([str(partial), "--out", str(out)]) == 1
    assert "times 1 of 10 collected tests (10%)" in capsys.readouterr().err
    assert out.read_text() == '{"kept": 1.0}\n'
    assert script.main([str(partial), "--out", str(out), "--min-share", "0"]) == 0
    assert script.main([str(whole), "--out", str(out)]) == 0
    assert len(json.loads(out.read_text())) == 10
