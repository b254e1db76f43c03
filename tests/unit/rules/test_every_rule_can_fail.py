"""Every MUST and SHOULD rule has a test that shows it FAIL, and that test really does.

A rule that can only ever say PASS or not-applicable is not a check. Failing tests are
registered in two ways: the defect table of test_defects.py (each case names the rules
it breaks) and ``@shows_failing("RULE-N")`` on any other test of this directory
(failing.py). This module fails when a catalogued MUST/SHOULD rule has no registered
test, and it runs every registered test itself, recording each report the rule engine
makes, to check that the named rule FAILED in one of them: a registration cannot name a
rule its test never breaks.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from harness.rules import RULES, Level, Report, engine

pytestmark = pytest.mark.unit

HERE = Path(__file__).resolve().parent


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{__package__}.{name}" if __package__ else name)


def _conftest(config: pytest.Config) -> ModuleType:
    """This directory's conftest.py, the plugin pytest loaded from it. Not by the name
    ``conftest``: every test directory has one, and ``sys.modules["conftest"]`` is
    whichever pytest imported last (beside tests/unit/reports, one with no
    ``make_judge``)."""
    mine = HERE / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if isinstance(plugin, ModuleType) and path and Path(path).resolve() == mine:
            return plugin
    raise LookupError(f"pytest has not loaded {mine}")


def _test_modules() -> Iterator[ModuleType]:
    for path in sorted(HERE.glob("test_*.py")):
        if path.stem != Path(__file__).stem:
            yield _module(path.stem)


# A registered failing test: rule id -> [(name, how to run it with a judge and tmp_path)]
Runner = Callable[[Callable[..., Report], Path], object]


def _defect_runner(case: tuple) -> Runner:
    test = _module("test_defects").test_defect_flagged_by_exactly_its_rule
    return lambda judge, _tmp: test(judge, case[1], case[2], case[3], case[4])


def _marked_runner(fn: Callable[..., object]) -> Runner:
    params = list(inspect.signature(fn).parameters)
    unknown = set(params) - {"judge", "tmp_path"}
    assert not unknown, f"{fn.__name__}: a failing test here may only take judge and tmp_path"

    def run(judge: Callable[..., Report], tmp: Path) -> object:
        given: dict[str, Any] = {"judge": judge, "tmp_path": tmp}
        return fn(**{p: given[p] for p in params})

    return run


def failing_tests() -> dict[str, list[tuple[str, Runner]]]:
    """Rule id -> the registered tests that show it failing."""
    out: dict[str, list[tuple[str, Runner]]] = {}
    for case in _module("test_defects").DEFECTS:
        for rule in ({case[4]} if isinstance(case[4], str) else case[4]):
            out.setdefault(rule, []).append((f"test_defects::{case[0]}", _defect_runner(case)))
    for mod in _test_modules():
        for name, fn in inspect.getmembers(mod, inspect.isfunction):
            for rule in getattr(fn, "shows_failing", ()):
                assert rule in RULES, f"{mod.__name__}.{name} names unknown rule {rule}"
                out.setdefault(rule, []).append((f"{mod.__name__}::{name}", _marked_runner(fn)))
    return out


JUDGED = sorted(r.id for r in RULES.values() if r.level in (Level.MUST, Level.SHOULD))


def test_every_must_and_should_rule_has_a_failing_test() -> None:
    missing = [r for r in JUDGED if r not in failing_tests()]
    assert not missing, f"rules no test shows failing: {missing}"


def test_may_rules_have_nothing_to_fail() -> None:
    # MAY rules report what they saw; a test claiming to fail one would be a mistake
    may = {r.id for r in RULES.values() if r.level is Level.MAY}
    assert not may & set(failing_tests())


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> list[Report]:
    """Every Report the engine builds while the fixture is active (check_capture makes
    them through engine.Report, whoever calls it)."""
    made: list[Report] = []

    class Recorded(Report):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(engine, "Report", Recorded)
    return made


@pytest.mark.parametrize("rule_id", JUDGED)
def test_each_registered_failing_test_makes_its_rule_fail(
    rule_id: str, reports: list[Report], tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    conftest = _conftest(pytestconfig)
    cases = failing_tests().get(rule_id, [])
    assert cases, f"no test is registered as showing {rule_id} fail"
    for i, (name, run) in enumerate(cases):
        reports.clear()
        case_dir = tmp_path / str(i)
        case_dir.mkdir()
        run(conftest.make_judge(case_dir), case_dir)
        failed = set().union(*(r.failed_rules() for r in reports))
        assert rule_id in failed, f"{name} is registered for {rule_id}, but no report it " \
                                  f"made failed {rule_id} (failed: {sorted(failed)})"


def test_the_recorder_sees_a_rule_that_did_not_fail(
    reports: list[Report], tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    """The check above can fail: a conformant flow registered for a rule is caught."""
    from harness.capture.synth_flows import bios_flow

    conftest = _conftest(pytestconfig)
    conftest.make_judge(tmp_path)(bios_flow)
    assert len(reports) == 1 and reports[0].failed_rules() == set()
