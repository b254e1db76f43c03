"""flexlab's pytest plugin as another project meets it: installed, but inert until asked.

Each test copies an example project from fixtures/downstream/ to a temporary directory
and runs pytest there in a subprocess, so the plugin is loaded the way a downstream
project loads it: through the ``pytest11`` entry point of the installed flexlab.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "fixtures" / "downstream"
HEAVY = ("pyroute2", "scapy", "docker", "fastapi", "harness.lab", "harness.builder",
         "harness.pytest_fixtures")

PROBE = '''
import sys

HEAVY = {heavy!r}


def pytest_sessionfinish(session):
    loaded = sorted(m for m in HEAVY if m in sys.modules)
    print("\\nheavy modules loaded: " + (", ".join(loaded) or "none"))
'''


def _project(tmp_path: Path, name: str) -> Path:
    project = tmp_path / name
    shutil.copytree(EXAMPLES / name, project)
    return project


def _pytest(project: Path, *args: str, ci: bool = False) -> subprocess.CompletedProcess[str]:
    """pytest in ``project`` with a probe plugin that reports heavy imports at the end."""
    probe = project.parent / "probe"
    probe.mkdir(exist_ok=True)
    (probe / "flexlab_import_probe.py").write_text(PROBE.format(heavy=HEAVY))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "CI")) and k != "PYTHONPATH"}
    env |= {"PYTHONPATH": str(probe), "COLUMNS": "200"}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "flexlab_import_probe",
         *args],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False)


def _plugins_line(out: str) -> str:
    return next((line for line in out.splitlines() if line.startswith("plugins:")), "")


def test_without_opt_in_a_project_run_is_unchanged(tmp_path: Path) -> None:
    project = _project(tmp_path, "plain")
    run = _pytest(project, "-rA", ci=True)  # CI=true alone must not make it strict either
    out = run.stdout + run.stderr
    assert "flexlab" in _plugins_line(out), "the plugin was not even loaded: " + out
    assert run.returncode == 0, out
    assert "1 passed" in out and "error" not in out.lower()
    assert "heavy modules loaded: none" in out
    assert not (project / "reports").exists(), "a reports/ folder nobody asked for"
    assert not list(project.rglob("*.xml")), "a JUnit file nobody asked for"


def test_without_opt_in_its_own_scenarios_are_not_collected(tmp_path: Path) -> None:
    project = _project(tmp_path, "plain")
    run = _pytest(project, "--collect-only", "-q")
    assert run.returncode == 0, run.stdout + run.stderr
    collected = [line for line in run.stdout.splitlines() if "::" in line]
    assert collected == ["tests/test_inventory.py::test_inventory_lists_two_racks"]


def test_a_flexlab_yaml_file_is_an_ask_of_its_own(tmp_path: Path) -> None:
    project = _project(tmp_path, "plain")
    (project / "checks").mkdir()
    shutil.copy(EXAMPLES / "optin" / "checks" / "lan.flexlab.yaml", project / "checks")
    run = _pytest(project, "--collect-only", "-q")
    assert run.returncode == 0, run.stdout + run.stderr
    collected = [line for line in run.stdout.splitlines() if "::" in line]
    assert sorted(collected) == ["checks/lan.flexlab.yaml::downstream-lan",
                                 "tests/test_inventory.py::test_inventory_lists_two_racks"]
    assert not (project / "reports").exists()


def test_opted_in_project_gets_fixtures_markers_scenarios_and_reports(tmp_path: Path) -> None:
    project = _project(tmp_path, "optin")
    listing = _pytest(project, "--collect-only", "-q")
    collected = [line for line in listing.stdout.splitlines() if "::" in line]
    assert "checks/lan.flexlab.yaml::downstream-lan" in collected, listing.stdout
    assert not any(line.startswith("scenarios/") for line in collected)

    fixtures = _pytest(project, "--fixtures", "tests")
    for name in ("flexlab_make_lab", "flexlab_lab", "flexlab_site_dhcp"):
        assert name in fixtures.stdout, name

    run = _pytest(project, "-rA", "tests")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "2 passed, 1 skipped" in out
    assert "pip install inventory-tools" in out  # the skip says how to get it
    # the probe sees imports (so "none" in the plain run means none): the fixtures came
    assert "harness.pytest_fixtures" in out.split("heavy modules loaded:")[1]
    assert (project / "reports" / "junit.xml").is_file()


def test_opted_in_project_is_strict_only_when_asked(tmp_path: Path) -> None:
    project = _project(tmp_path, "optin")
    run = _pytest(project, "-rA", "tests", "--flexlab-strict")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "CI host is missing a requirement: needs inventory-no-such-tool" in out
