"""scripts/shard-coverage.py: N shards are an exact partition of the suite only when every
test is in exactly one shard and no shard runs a test the whole suite does not."""

from __future__ import annotations

from types import ModuleType

import pytest
from script_module import load_script

pytestmark = pytest.mark.unit

WHOLE = ["a.py::t1", "a.py::t2", "b.py::t3", "b.py::t4"]
DURATIONS = {"a.py::t1": 10.0, "a.py::t2": 30.0, "b.py::t3": 20.0}  # t4 has none


def _script() -> ModuleType:
    return load_script("scripts/shard-coverage.py", "shard_coverage")


def test_an_exact_split_is_exact_and_weighs_each_shard() -> None:
    got = _script().partition_report(WHOLE, [["a.py::t1", "b.py::t4"],
                                             ["a.py::t2", "b.py::t3"]], DURATIONS)
    assert got["exact"] and got["shard_tests"] == [2, 2]
    # t4 counts as the mean of the known durations (20 s), as pytest-split assumes
    assert got["expected_s"] == [30.0, 50.0] and got["expected_share"] == [0.375, 0.625]
    assert got["tests_without_duration"] == 1


@pytest.mark.parametrize("shards, broken, which", [
    ([["a.py::t1", "b.py::t4"], ["a.py::t2"]], "missing", ["b.py::t3"]),
    ([["a.py::t1", "b.py::t4", "b.py::t3"], ["a.py::t2", "b.py::t3"]], "in_two_shards",
     ["b.py::t3"]),
    ([["a.py::t1", "b.py::t4", "c.py::t9"], ["a.py::t2", "b.py::t3"]], "not_in_whole",
     ["c.py::t9"]),
])
def test_a_test_lost_doubled_or_foreign_breaks_the_partition(
        shards: list[list[str]], broken: str, which: list[str]) -> None:
    got = _script().partition_report(WHOLE, shards, DURATIONS)
    assert not got["exact"] and got[broken] == which
