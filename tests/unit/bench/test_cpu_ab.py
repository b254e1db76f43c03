"""bench/cpu_ab.py: runs whose tests failed are counted apart; each run is what
cpu-by-kind measured around that tree's pytest."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.cpu_ab import one_run, summarise
from bench.storm_ab import Config

pytestmark = pytest.mark.unit


def _run(exit_: int, wall: float, cpu: float, kinds: dict[str, float]) -> dict[str, object]:
    return {"exit": exit_, "wall_s": wall, "host_busy_cpu_s": cpu, "cpu_s_by_kind": kinds}


def test_a_run_whose_tests_failed_is_counted_apart() -> None:
    s = summarise([_run(0, 30.0, 10.0, {"a": 4.0, "b": 1.0}),
                   _run(1, 5.0, 1.0, {"a": 0.5}),          # failed: not a figure
                   _run(0, 34.0, 14.0, {"a": 6.0})])       # no "b": it used none
    assert s["wall_s"] == {"median": 32.0, "min": 30.0, "max": 34.0, "n": 2}
    assert s["host_busy_cpu_s"]["median"] == 12.0
    assert s["cpu_s_by_kind"]["a"] == {"median": 5.0, "min": 4.0, "max": 6.0, "n": 2}
    assert s["cpu_s_by_kind"]["b"] == {"median": 0.5, "min": 0.0, "max": 1.0, "n": 2}
    assert s["runs_failed"] == 1


def test_one_run_is_the_trees_cpu_by_kind_around_its_pytest(tmp_path: Path) -> None:
    """A stand-in tree: its cpu-by-kind writes what it was asked to run and the
    configuration's environment; one_run reports that document's figures."""
    tree = tmp_path / "t"
    (tree / ".venv" / "bin").mkdir(parents=True)
    (tree / ".venv" / "bin" / "python").symlink_to(sys.executable)
    (tree / "scripts").mkdir()
    (tree / "scripts" / "cpu-by-kind.py").write_text(
        "import json, os, sys\n"
        "args = sys.argv[1:]\n"
        "out = args[args.index('--out') + 1]\n"
        "cmd = args[args.index('--') + 1:]\n"
        "json.dump({'exit': 0, 'wall_s': 1.5, 'host_busy_cpu_s': 2.5,\n"
        "           'cpu_s_by_kind': {'seen': float(len(cmd)),\n"
        "                             os.environ['KIND']: 1.0}}, open(out, 'w'))\n"
        "print(' '.join(cmd[1:]))\n"
        "print('== 3 passed in 1.2s ==')\n")
    record = one_run(Config("x", tree, {"KIND": "from-env"}), ["-k", "process", "tests/a"])
    assert record["config"] == "x" and record["exit"] == 0
    assert record["wall_s"] == 1.5 and record["host_busy_cpu_s"] == 2.5
    # <python> -m pytest -q -p no:cacheprovider -k process tests/a: 9 words
    assert record["cpu_s_by_kind"] == {"seen": 9.0, "from-env": 1.0}
    assert record["pytest_said"] == "3 passed in 1.2s"
    json.dumps(record)
