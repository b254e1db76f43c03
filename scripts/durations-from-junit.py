#!/usr/bin/env python3
"""Refresh ``.test_durations`` (pytest-split's shard plan) from a JUnit file CI already wrote.

    .venv/bin/python scripts/durations-from-junit.py reports/junit.xml

``make test-durations`` measures by running the whole suite again (18 minutes on this
2-core host); CI's own run already timed every test in its ``reports/junit.xml``. JUnit
names a test by ``classname`` (dotted path, ``.py`` dropped, plus any class) and
``name``, which is not a node id and cannot be turned back into one unambiguously (a
directory or a scenario file name may hold dots). So the suite is collected, each node id
is turned into the JUnit key it would get, and the JUnit times are looked up by that key.
Node ids the JUnit file does not time (a test added since) are listed and left out:
pytest-split gives them the average. Times from xdist workers sharing the cores are
longer than alone, but in proportion, which is all a shard plan needs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


MIN_SHARE = 0.9
"""A JUnit file timing fewer of the collected tests is taken for a partial run: writing it
would leave most tests to pytest-split's average and unbalance every shard."""


def junit_key(nodeid: str) -> tuple[str, str]:
    """The (classname, name) pytest's JUnit writer gives the test ``nodeid``."""
    base, bracket, params = nodeid.partition("[")  # parameters may hold "::" (IPv6)
    path, *rest = base.split("::")
    module = path.removesuffix(".py").replace("/", ".")
    *classes, name = rest or [""]
    return ".".join([module, *classes]), name + bracket + params


def junit_times(junit: Path) -> dict[tuple[str, str], float]:
    """Seconds per (classname, name) of every test case in ``junit``; a name met twice
    (a rerun) keeps the larger time."""
    times: dict[tuple[str, str], float] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        key = (case.get("classname") or "", case.get("name") or "")
        try:
            seconds = float(case.get("time") or "")
        except ValueError:
            continue
        times[key] = max(seconds, times.get(key, 0.0))
    return times


def durations(nodeids: list[str], times: dict[tuple[str, str], float]
              ) -> tuple[dict[str, float], list[str]]:
    """Seconds per node id, rounded to ms, and the node ids ``times`` does not know.

    Under ``--dist loadgroup`` pytest-xdist names a test of an ``xdist_group`` with the
    group appended (``test_x@neighbours``), in the JUnit file too; such a name is also
    found under the name without it."""
    grouped = {(cls, name.rpartition("@")[0]): seconds
               for (cls, name), seconds in times.items() if "@" in name}
    found: dict[str, float] = {}
    unknown: list[str] = []
    for nodeid in nodeids:
        key = junit_key(nodeid)
        seconds = times.get(key, grouped.get(key))
        if seconds is None:
            unknown.append(nodeid)
        else:
            found[nodeid] = round(seconds, 3)
    return found, unknown


def _collect() -> list[str]:
    spec = importlib.util.spec_from_file_location("check_shards",
                                                  REPO / "scripts" / "check-shards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    collected: list[str] = module.collect()
    return collected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit", type=Path, help="a JUnit file of a whole-suite run")
    parser.add_argument("--out", type=Path, default=REPO / ".test_durations")
    parser.add_argument("--min-share", type=float, default=MIN_SHARE,
                        help="refuse a JUnit file that times fewer than this share of the "
                             f"collected tests (default {MIN_SHARE})")
    args = parser.parse_args(argv)
    if not args.junit.is_file():
        print(f"durations-from-junit: no such file: {args.junit}", file=sys.stderr)
        return 2
    try:
        times = junit_times(args.junit)
    except ET.ParseError as exc:
        print(f"durations-from-junit: {args.junit} is not JUnit XML: {exc}", file=sys.stderr)
        return 2
    found, unknown = durations(_collect(), times)
    if not found:
        print(f"durations-from-junit: {args.junit} times none of the collected tests",
              file=sys.stderr)
        return 1
    share = len(found) / (len(found) + len(unknown))
    if share < args.min_share:
        print(f"durations-from-junit: {args.junit} times {len(found)} of "
              f"{len(found) + len(unknown)} collected tests ({share:.0%}): not a whole-suite "
              f"run (a later partial pytest run rewrites reports/junit.xml); {args.out.name} "
              "is left as it was. Give the whole run's JUnit file, or --min-share 0 to "
              "write it anyway", file=sys.stderr)
        return 1
    args.out.write_text(json.dumps(dict(sorted(found.items())), indent=1) + "\n")
    print(f"{len(found)} tests timed ({sum(found.values()):.0f} s) into {args.out.name}; "
          f"{len(unknown)} not in the JUnit file (pytest-split gives them the average)")
    for nodeid in unknown[:10]:
        print(f"  untimed: {nodeid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
