"""harness/suite_order.py: the order the suite runs in moves tests, never drops or repeats
one, keeps each file's tests together, starts the longest lab files first and weaves the
CPU-bound files in between; conftest.py applies it unless told not to."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from harness.suite_order import Block, load_durations, order_blocks, order_items

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def _items(spec: dict[str, list[float | None]]) -> list[tuple[str, int, float | None]]:
    """(file, index in file, seconds) items, files in the dict's order."""
    return [(f, i, s) for f, secs in spec.items() for i, s in enumerate(secs)]


def _order(items: list[tuple[str, int, float | None]],
           cpu_files: set[str]) -> list[tuple[str, int, float | None]]:
    return order_items(items, file_of=lambda it: it[0], seconds_of=lambda it: it[2],
                       cpu_bound=lambda it: it[0] in cpu_files)


@pytest.mark.parametrize("seed", range(25))
def test_every_test_runs_once_and_each_files_tests_stay_together_in_order(seed: int) -> None:
    rng = random.Random(seed)
    spec = {f"f{n}": [rng.choice([None, rng.uniform(0, 90)]) for _ in range(rng.randint(1, 6))]
            for n in range(rng.randint(1, 30))}
    cpu = {f for f in spec if rng.random() < 0.5}
    items = _items(spec)
    out = _order(items, cpu)
    assert sorted(out, key=repr) == sorted(items, key=repr)
    files = [f for f, _, _ in out]
    runs = [f for n, f in enumerate(files) if n == 0 or files[n - 1] != f]
    assert len(runs) == len(set(runs)), f"a file's tests were split apart: {runs}"
    for f in spec:
        assert [i for g, i, _ in out if g == f] == list(range(len(spec[f])))


def test_lab_files_start_longest_test_first_whatever_their_collection_order() -> None:
    out = _order(_items({"short": [2.0, 3.0], "long": [1.0, 80.0], "mid": [30.0]}), set())
    assert [f for f, i, _ in out if i == 0] == ["long", "mid", "short"]


def test_cpu_bound_files_are_woven_between_lab_files_not_left_to_the_end() -> None:
    spec: dict[str, list[float | None]] = {f"lab{n}": [10.0] for n in range(6)}
    spec.update({f"unit{n}": [5.0] for n in range(6)})
    out = [f for f, _, _ in _order(_items(spec), {f"unit{n}" for n in range(6)})]
    # 30 s of unit in 90 s: 5 s of unit after every lab file's 10 s
    assert out == ["lab0", "unit0", "lab1", "unit1", "lab2", "unit2", "lab3", "unit3",
                   "lab4", "unit4", "lab5", "unit5"]


def test_the_cpu_share_of_every_prefix_stays_near_the_whole_runs_share() -> None:
    rng = random.Random(7)
    blocks = [Block(f"l{n}", (rng.uniform(1, 60),), False) for n in range(40)]
    blocks += [Block(f"u{n}", tuple(rng.uniform(0.01, 2) for _ in range(rng.randint(1, 20))),
                     True) for n in range(60)]
    out = order_blocks(blocks)
    assert sorted(b.key for b in out) == sorted(b.key for b in blocks)
    share = sum(b.total for b in blocks if b.cpu_bound) / sum(b.total for b in blocks)
    biggest = max(b.total for b in blocks if b.cpu_bound)
    done = {True: 0.0, False: 0.0}
    for b in out[:-1]:
        done[b.cpu_bound] += b.total
        if not done[False]:
            continue
        queued = done[True] + done[False]
        # never more than one CPU block ahead of its share; behind only until the next lab block
        assert done[True] <= share * queued + biggest
        if not b.cpu_bound:
            assert done[True] >= share * queued - b.total - biggest


def test_an_unknown_test_counts_as_the_median_of_its_kind() -> None:
    # "new" has no duration: as the lab median (20 s) it goes after "a" (30) before "b" (10)
    out = _order(_items({"b": [10.0], "new": [None], "a": [30.0], "c": [20.0]}), set())
    assert [f for f, _, _ in out] == ["a", "new", "c", "b"]


def test_no_durations_at_all_keeps_the_collection_order() -> None:
    spec: dict[str, list[float | None]] = {"z": [None], "a": [None, None], "m": [None]}
    assert _order(_items(spec), set()) == _items(spec)


def test_a_missing_or_broken_durations_file_is_no_durations(tmp_path: Path) -> None:
    assert load_durations(tmp_path / "absent") == {}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert load_durations(bad) == {}
    bad.write_text("[1, 2]")
    assert load_durations(bad) == {}
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps({"a::t": 1.5, "b::t": -1, "c::t": "x", "d::t": 2}))
    assert load_durations(mixed) == {"a::t": 1.5, "d::t": 2.0}


def _collected(*args: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [line for line in proc.stdout.splitlines() if "::" in line]


def test_the_repository_suite_is_collected_in_this_order_unless_told_otherwise() -> None:
    durations = load_durations(REPO / ".test_durations")
    short, long = "tests/vm/test_vm_http_boot.py", "scenarios/vm/vm-hybrid.yaml"
    assert max(v for k, v in durations.items() if k.startswith(short)) \
        < durations[f"{long}::vm-hybrid"], "the premise: the scenario is the longer file"
    ordered = _collected(short, long)
    assert ordered[0] == f"{long}::vm-hybrid", ordered
    as_given = _collected("--suite-order", "collection", short, long)
    assert as_given[0].startswith(short), as_given
    assert sorted(ordered) == sorted(as_given)
