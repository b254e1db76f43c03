"""scripts/check-shards.py, which shows that N pytest-split shards (CI over N machines,
docs/CI.md) run exactly the whole suite, catches a shard plan that drops or repeats a test.

The check itself collects the suite four times (a minute on a loaded host), so CI runs it
as its own step (ci-examples/), not inside the suite."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from script_module import load_script

pytestmark = pytest.mark.unit



def _check_shards() -> ModuleType:
    return load_script("scripts/check-shards.py", "check_shards")


def _report(tmp_path: Path, *collections: list[str]) -> Any:
    """shard_report on canned collections (whole, shard 1, shard 2, whole again)."""
    module = _check_shards()
    calls = iter(collections)
    durations = tmp_path / "d.json"
    durations.write_text(json.dumps({"a.py::t1": 3.0, "b.py::t3": 1.0}))
    original = module.collect
    module.collect = lambda *extra: next(calls)
    try:
        return module.shard_report(2, durations)
    finally:
        module.collect = original


WHOLE = ["a.py::t1", "a.py::t2", "b.py::t3"]


def test_shards_that_partition_the_suite_pass(tmp_path: Path) -> None:
    report = _report(tmp_path, WHOLE, ["a.py::t1"], ["a.py::t2", "b.py::t3"], WHOLE)
    assert report.exact and report.shard_tests == [1, 2]
    assert report.shard_seconds == [3.0, 3.0]  # t2 unknown: the average of the known, 2 s
    assert report.unknown_durations == ["a.py::t2"]


def test_a_shard_plan_that_drops_or_repeats_a_test_is_caught(tmp_path: Path) -> None:
    report = _report(tmp_path, WHOLE, ["a.py::t1"], ["b.py::t3"], WHOLE)
    assert report.missing == ["a.py::t2"] and not report.exact
    report = _report(tmp_path, WHOLE, ["a.py::t1", "b.py::t3"], ["a.py::t2", "b.py::t3"],
                     WHOLE)
    assert report.twice == ["b.py::t3"] and not report.exact


def test_a_suite_that_changed_during_the_check_is_compared_again(tmp_path: Path) -> None:
    grown = [*WHOLE, "c.py::t4"]
    report = _report(tmp_path, WHOLE, ["a.py::t1"], ["a.py::t2", "b.py::t3"], grown,
                     ["a.py::t1", "c.py::t4"], ["a.py::t2", "b.py::t3"], grown)
    assert report.exact and report.tests == 4


def test_the_report_is_kept_as_json_when_asked(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    module = _check_shards()
    durations = tmp_path / "d.json"
    durations.write_text(json.dumps({"a.py::t1": 3.0, "b.py::t3": 1.0}))
    calls = iter([WHOLE, ["a.py::t1"], ["b.py::t3"], WHOLE])  # a.py::t2 in no shard
    monkeypatch.setattr(module, "collect", lambda *extra: next(calls))
    out = tmp_path / "shards.json"
    assert module.main(["--durations-path", str(durations), "--results", str(out)]) == 1
    doc = json.loads(out.read_text())
    assert doc["exact"] is False and doc["missing"] == ["a.py::t2"]
    assert doc["shard_tests"] == [1, 1] and doc["shard_share"] == [0.75, 0.25]
    assert doc["command"].startswith("python scripts/check-shards.py") and doc["commit"]
