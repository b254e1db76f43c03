"""The requirement rule of flexlab's pytest plugin, run on real pytest sessions (pytester).

A missing requirement skips with a how-to on a developer's host and FAILS in a strict run
(``--flexlab-strict``, what our CI passes), so a green CI means every test ran; only
hardware CI has not got (KVM, a real LAN) stays a skip there. ``CI=true`` alone changes
nothing (a downstream project's CI must not turn its skips into failures). Tests route
requirements through the markers or ``require()``, never through their own
``skipif``/``importorskip``/``pytest.skip``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import pytest_plugin

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]

TESTS = '''
import pytest
from harness.pytest_plugin import require

@pytest.mark.needs_binary("flexlab-no-such-program", how="apt-get install flexlab-nothing")
def test_binary():
    pass

@pytest.mark.needs_module("flexlab_no_such_module", how="pip install flexlab-nothing")
def test_module():
    pass

@pytest.mark.needs(1 + 1 == 3, reason="needs arithmetic that is wrong: cannot be had")
def test_condition():
    pass

@pytest.fixture
def image():
    require(False, "no image built yet: make images")

def test_run_time(image):
    pass

@pytest.mark.needs_docker
def test_docker():
    pass
'''


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, strict: bool,
         source: str = TESTS, ci: str | None = None) -> pytest.RunResult:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("COLUMNS", "250")  # the summary lines are matched whole
    # the Docker check is the host's; make it the missing one either way
    monkeypatch.setitem(pytest_plugin.REQUIREMENT_CHECKS, "needs_docker", lambda: False)
    pytester.makeini("[pytest]\nflexlab = true\n")  # the project opts in
    pytester.makepyfile(test_needs=source)
    # allure keeps module-level state shared with the outer session: not in the inner one
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:allure_pytest", "-rA",
                              "--strict-markers",
                              f"--flexlab-reports={pytester.path / 'reports'}",
                              *(["--flexlab-strict"] if strict else []))


def test_missing_requirements_fail_when_strict(pytester: pytest.Pytester,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(pytester, monkeypatch, True)
    result.assert_outcomes(errors=5)  # a requirement fails the test in its setup
    result.stdout.fnmatch_lines_random([
        "ERROR test_needs.py::test_binary - Failed: CI host is missing a requirement: "
        "needs flexlab-no-such-program on PATH: apt-get install flexlab-nothing",
        "ERROR test_needs.py::test_module - Failed: CI host is missing a requirement: "
        "needs Python module flexlab_no_such_module: pip install flexlab-nothing",
        "ERROR test_needs.py::test_condition - Failed: CI host is missing a requirement: "
        "needs arithmetic that is wrong: cannot be had",
        "ERROR test_needs.py::test_run_time - Failed: CI host is missing a requirement: "
        "no image built yet: make images",
        "ERROR test_needs.py::test_docker - Failed: CI host is missing a requirement: "
        + pytest_plugin.REQUIREMENT_MARKERS["needs_docker"],
    ])


def test_missing_requirements_skip_with_how_to_elsewhere(pytester: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(pytester, monkeypatch, False)
    result.assert_outcomes(skipped=5)
    out = result.stdout.str()
    assert "CI host" not in out
    for how in ("apt-get install flexlab-nothing", "pip install flexlab-nothing",
                "cannot be had", "make images", "starts dockerd"):
        assert re.search(rf"SKIPPED \[1\] .*{re.escape(how)}", out), how


def test_ci_variable_alone_is_not_strict(pytester: pytest.Pytester,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(pytester, monkeypatch, False, ci="true")
    result.assert_outcomes(skipped=5)
    assert "CI host" not in result.stdout.str()


def test_strict_by_ini_option(pytester: pytest.Pytester,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nflexlab = true\nflexlab_strict = true\n")
    monkeypatch.setitem(pytest_plugin.REQUIREMENT_CHECKS, "needs_docker", lambda: False)
    pytester.makepyfile(test_strict="import pytest\n\n@pytest.mark.needs_docker\n"
                        "def test_docker():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:allure_pytest",
                                f"--flexlab-reports={pytester.path / 'reports'}")
    result.assert_outcomes(errors=1)
    assert "CI host is missing a requirement" in result.stdout.str()


def test_hardware_ci_lacks_stays_a_skip_when_strict(pytester: pytest.Pytester,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    source = '''
import pytest

@pytest.mark.real_lan
def test_lan():
    pass
'''
    result = _run(pytester, monkeypatch, True, source)
    result.assert_outcomes(skipped=1)
    assert "--iface IF" in result.stdout.str()


def test_met_requirements_run(pytester: pytest.Pytester,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    source = '''
import pytest
from harness.pytest_plugin import require

@pytest.mark.needs_binary("sh", how="a POSIX shell")
@pytest.mark.needs_module("json", how="the standard library")
@pytest.mark.needs(True, reason="always met")
def test_all_met():
    require(True, "met")
'''
    _run(pytester, monkeypatch, True, source).assert_outcomes(passed=1)


def test_a_marker_without_its_how_to_is_an_error(pytester: pytest.Pytester,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    source = '''
import pytest

@pytest.mark.needs_binary("flexlab-no-such-program")
def test_no_how():
    pass
'''
    result = _run(pytester, monkeypatch, False, source)
    result.assert_outcomes(errors=1)
    assert "needs how=" in result.stdout.str()


SELF_SKIP = re.compile(r"pytest\.mark\.skip(if)?\b|importorskip\(|pytest\.skip\("
                       r"|from pytest import .*\bskip\b|unittest\.skip")
# Being reworked by their owners in the same issue (the catalogue and the golden captures):
# they move to require() there, and then leave this set.
# The shared-copy comparison is not an environment requirement: a clean clone (CI) has
# no team copy beside it, and the issue asks for the comparison only where one exists;
# the repo's own copy is always checked (test_ids_match_conformance_document).
NOT_YET_ROUTED = {"tests/unit/rules/test_catalog.py"}


def test_no_test_skips_on_its_own() -> None:
    """Every environment requirement goes through the markers or require(): a test's own
    skipif/importorskip/pytest.skip would skip under CI instead of failing."""
    offenders = [
        f"{rel}:{n}: {line.strip()}"
        for path in [REPO / "conftest.py", *sorted((REPO / "tests").rglob("*.py"))]
        if path != Path(__file__).resolve()
        if (rel := str(path.relative_to(REPO))) not in NOT_YET_ROUTED
        for n, line in enumerate(path.read_text().splitlines(), 1) if SELF_SKIP.search(line)
    ]
    assert offenders == [], "route these through needs_* / require():\n" + "\n".join(offenders)
