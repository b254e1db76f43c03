"""The order this repository's suite runs in: long lab files first, CPU-bound files between.

Why: ``make test`` runs on 2 cores with several xdist workers, which take the next test
as they finish one. In collection order the host sat half idle for minutes (sim tests
waiting on firmware timers, all at once) and was saturated for others (the VM tier's
QEMU, the unit tier), and the run ended on one worker's long scenario. Ordered here:

- the lab files (sim and vm tier: test modules and scenario files) longest test first, so
  the longest ones start at once and the run does not end waiting on one of them;
- the unit tier's files woven in between, in proportion to their time, so there is
  always CPU-bound work to fill a core while lab tests wait;
- a file's tests stay together and in their own order: a module-scoped fixture (a lab,
  a Control Plane process) is built once per worker, as before.

Times come from the committed ``.test_durations`` (pytest-split's file, refreshed by
``make test-durations``); a test not in it counts as its tier's median. The order only
moves tests: every collected test is still run, once (tests/unit/test_suite_order.py).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

__all__ = ["Block", "load_durations", "order_blocks", "order_items"]

T = TypeVar("T")

# A test the durations file does not know, in a tier with no known test either.
_UNKNOWN_SECONDS = 1.0


@dataclass(frozen=True)
class Block:
    """The tests of one file, kept together: ``cpu_bound`` for the unit tier's files."""

    key: str
    seconds: tuple[float, ...]
    cpu_bound: bool

    @property
    def total(self) -> float:
        return sum(self.seconds)

    @property
    def longest(self) -> float:
        return max(self.seconds, default=0.0)


def load_durations(path: Path) -> dict[str, float]:
    """Per-test seconds from a pytest-split durations file; {} when absent or unreadable
    (the order then falls back to each tier's default, never to an error)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: float(v) for k, v in raw.items()
            if isinstance(k, str) and isinstance(v, (int, float)) and v >= 0}


def order_blocks(blocks: Sequence[Block]) -> list[Block]:
    """Lab blocks longest test first; CPU-bound blocks (largest first) woven in so that,
    at every point of the queue, their share of the time so far matches their share of
    the whole. Ties keep the given order, so the result is the same on every worker."""
    # sorted() is stable: ties keep the given order
    lab = sorted((b for b in blocks if not b.cpu_bound), key=lambda b: -b.longest)
    cpu = sorted((b for b in blocks if b.cpu_bound), key=lambda b: -b.total)
    lab_total = sum(b.total for b in lab)
    cpu_total = sum(b.total for b in cpu)
    share = cpu_total / (cpu_total + lab_total) if cpu_total + lab_total > 0 else 0.0
    out: list[Block] = []
    done_lab = done_cpu = 0.0
    pending = iter(cpu)
    nxt = next(pending, None)
    for block in lab:
        out.append(block)
        done_lab += block.total
        # weave CPU-bound blocks in until they hold their share of what is queued
        while nxt is not None and done_cpu < share * (done_lab + done_cpu):
            out.append(nxt)
            done_cpu += nxt.total
            nxt = next(pending, None)
    while nxt is not None:
        out.append(nxt)
        nxt = next(pending, None)
    return out


def order_items(items: Sequence[T], *, file_of: Callable[[T], Hashable],
                seconds_of: Callable[[T], float | None],
                cpu_bound: Callable[[T], bool]) -> list[T]:
    """``items`` grouped by file (first appearance), the files put in `order_blocks`'
    order, each file's items in their given order. ``seconds_of`` is None for an unknown
    test: it then counts as the median of the known tests of its kind (CPU-bound or lab)."""
    groups: dict[Hashable, list[T]] = {}
    for item in items:
        groups.setdefault(file_of(item), []).append(item)
    known: dict[bool, list[float]] = {True: [], False: []}
    for item in items:
        s = seconds_of(item)
        if s is not None:
            known[cpu_bound(item)].append(s)
    default = {kind: statistics.median(v) if v else _UNKNOWN_SECONDS
               for kind, v in known.items()}
    blocks: list[Block] = []
    by_key: dict[str, list[T]] = {}
    for n, (_, members) in enumerate(groups.items()):
        kind = cpu_bound(members[0])
        secs = tuple(s if (s := seconds_of(m)) is not None else default[kind]
                     for m in members)
        key = str(n)
        by_key[key] = members
        blocks.append(Block(key, secs, kind))
    return [m for b in order_blocks(blocks) for m in by_key[b.key]]
