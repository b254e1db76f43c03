#!/usr/bin/env python3
"""Check that N pytest-split shards cover exactly the whole suite, and how evenly.

    .venv/bin/python scripts/shard-coverage.py --splits 2

It collects the whole suite and then each shard exactly as scripts/run-tests.sh selects
it with FLEXLAB_TEST_SHARD=i/N (pytest-split, the committed .test_durations,
least_duration), and compares the test ids: every test in exactly one shard, none
missing, none twice, none extra. Each shard's expected time is the sum of its tests'
committed durations (a test with none counts as the mean, as pytest-split assumes).
Writes bench/results/shard-coverage.json; exit status 1 when the shards are not an
exact partition of the suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.provenance import stamp  # noqa: E402

RESULTS = REPO / "bench" / "results" / "shard-coverage.json"
DURATIONS = REPO / ".test_durations"

__all__ = ["collect", "main", "partition_report"]


def collect(extra: Sequence[str] = ()) -> list[str]:
    """The test ids pytest selects with these arguments (``--collect-only -q``)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--collect-only", "-q", *extra], cwd=REPO, capture_output=True,
                          text=True, check=False)
    ids: list[str] = []
    for line in proc.stdout.splitlines():
        if "::" in line and not line[:1].isspace() and not line.startswith("["):
            ids.append(line)
        elif ids and not line.strip():
            break  # the ids are one a line; the warnings summary after them names tests too
    if proc.returncode != 0 or not ids:
        raise SystemExit(f"pytest --collect-only {' '.join(extra)} failed "
                         f"(exit {proc.returncode}):\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return ids


def partition_report(whole: Sequence[str], shards: Sequence[Sequence[str]],
                     durations: dict[str, float]) -> dict[str, Any]:
    """Whether ``shards`` split ``whole`` exactly, and each shard's expected seconds.

    ``exact`` holds only when every test of the whole is in exactly one shard and no shard
    has a test the whole does not; the lists say which tests broke it.
    """
    seen = Counter(t for shard in shards for t in shard)
    whole_set = set(whole)
    mean = statistics.mean(durations.values()) if durations else 0.0
    missing = sorted(whole_set - set(seen))
    twice = sorted(t for t, n in seen.items() if n > 1)
    extra = sorted(set(seen) - whole_set)
    expected = [round(sum(durations.get(t, mean) for t in shard), 1) for shard in shards]
    total = sum(expected) or 1.0
    return {
        "whole_tests": len(whole_set),
        "shard_tests": [len(s) for s in shards],
        "exact": not (missing or twice or extra) and len(whole) == len(whole_set),
        "missing": missing, "in_two_shards": twice, "not_in_whole": extra,
        "expected_s": expected,
        "expected_share": [round(e / total, 3) for e in expected],
        "tests_without_duration": sum(1 for t in whole_set if t not in durations),
    }


def main(argv: list[str] | None = None) -> int:
    """Collect, compare, write the JSON and print a line per shard."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=2)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.splits < 2:
        parser.error("--splits must be 2 or more")
    doc = stamp("python scripts/shard-coverage.py " + " ".join(
        argv if argv is not None else sys.argv[1:]), runs=1)
    durations = {k: float(v) for k, v in json.loads(DURATIONS.read_text()).items()}
    whole = collect()
    shards = [collect(["--splits", str(args.splits), "--group", str(i), "--durations-path",
                       str(DURATIONS), "--splitting-algorithm", "least_duration"])
              for i in range(1, args.splits + 1)]
    report = partition_report(whole, shards, durations)
    doc.update({"splits": args.splits, "algorithm": "least_duration",
                "durations_file": ".test_durations", **report})
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(doc, indent=2) + "\n")
    for i, (n, secs, share) in enumerate(zip(report["shard_tests"], report["expected_s"],
                                             report["expected_share"], strict=True), 1):
        print(f"shard {i}/{args.splits}: {n} tests, expected {secs:.0f} s ({share:.0%})")
    print(f"whole suite: {report['whole_tests']} tests; "
          f"{'exact partition' if report['exact'] else 'NOT an exact partition'} "
          f"(missing {len(report['missing'])}, in two shards {len(report['in_two_shards'])}, "
          f"not in the whole {len(report['not_in_whole'])}); wrote {args.results}")
    return 0 if report["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
