#!/usr/bin/env python3
"""Check that N pytest-split shards run exactly the whole suite, and how even they are.

    .venv/bin/python scripts/check-shards.py            # 2 shards
    .venv/bin/python scripts/check-shards.py --splits 4

Collects the suite once whole and once per shard (``--collect-only``, nothing runs):
every test must be in exactly one shard — none missing (a test no CI machine runs), none
twice. Then prints each shard's share of the committed ``.test_durations``, and the tests
those durations do not know (pytest-split gives them the average; refresh the file with
``scripts/suite-timing.py --store-durations`` after adding slow tests). Exit 1 on a gap
or an overlap. ``--results FILE`` also keeps the report as JSON with the command, date,
commit and load (e.g. bench/results/shards.json, for a note's figures).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.provenance import stamp  # noqa: E402

DURATIONS = REPO / ".test_durations"


def collect(*extra: str) -> list[str]:
    """Node ids pytest would run with ``extra`` arguments (collection only)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-p", "no:randomly", *extra],
        cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 5):
        raise SystemExit(f"collection failed ({proc.returncode}):\n{proc.stdout[-3000:]}"
                         f"{proc.stderr[-2000:]}")
    # -q lists one node id a line (ids may hold spaces), then a blank line and a summary
    ids = []
    for line in proc.stdout.splitlines():
        if "::" in line and not line.startswith((" ", "[", "=", "-")):
            ids.append(line)
    return ids


@dataclass
class ShardReport:
    """The whole suite against its shards."""

    tests: int
    missing: list[str]  # in no shard
    twice: list[str]  # in more than one
    extra: list[str]  # in a shard, not in the whole suite
    shard_tests: list[int]
    shard_seconds: list[float]  # each shard's share of .test_durations
    unknown_durations: list[str]  # tests .test_durations does not know

    @property
    def exact(self) -> bool:
        """Every test in exactly one shard."""
        return not (self.missing or self.twice or self.extra)


def shard_report(splits: int, durations_path: Path = DURATIONS, attempts: int = 3
                 ) -> ShardReport:
    """Whole-suite and per-shard node ids compared; every shard's estimated seconds.

    The suite is collected whole again after the shards: if it changed meanwhile (someone
    added a test to the working tree), the comparison is void and is made again."""
    whole = collect()
    for _ in range(attempts):
        shards = [collect("--splits", str(splits), "--group", str(i), "--durations-path",
                          str(durations_path), "--splitting-algorithm", "least_duration")
                  for i in range(1, splits + 1)]
        after = collect()
        if after == whole:
            break
        whole = after
    durations: dict[str, float] = json.loads(durations_path.read_text())
    known = [d for t, d in durations.items() if t in set(whole)]
    average = sum(known) / len(known) if known else 1.0
    seen: dict[str, int] = {}
    for shard in shards:
        for test in shard:
            seen[test] = seen.get(test, 0) + 1
    return ShardReport(
        tests=len(whole),
        missing=sorted(set(whole) - seen.keys()),
        twice=sorted(t for t, n in seen.items() if n > 1),
        extra=sorted(seen.keys() - set(whole)),
        shard_tests=[len(s) for s in shards],
        shard_seconds=[round(sum(durations.get(t, average) for t in s), 1) for s in shards],
        unknown_durations=sorted(set(whole) - durations.keys()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=2)
    parser.add_argument("--durations-path", type=Path, default=DURATIONS)
    parser.add_argument("--results", type=Path, default=None, metavar="FILE",
                        help="also write the report as JSON, stamped")
    args = parser.parse_args(argv)
    doc = stamp("python scripts/check-shards.py " + " ".join(
        argv if argv is not None else sys.argv[1:]), runs=1)
    r = shard_report(args.splits, args.durations_path)
    if args.results is not None:
        total_s = sum(r.shard_seconds) or 1.0
        doc.update({"splits": args.splits, "algorithm": "least_duration",
                    "durations_file": args.durations_path.name, "exact": r.exact,
                    "shard_share": [round(s / total_s, 3) for s in r.shard_seconds],
                    **asdict(r)})
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(doc, indent=2) + "\n")
    total = sum(r.shard_seconds) or 1.0
    print(f"{r.tests} tests; {args.splits} shards: " + ", ".join(
        f"#{i + 1} {n} tests ~{s} s ({100 * s / total:.0f} %)"
        for i, (n, s) in enumerate(zip(r.shard_tests, r.shard_seconds, strict=True))))
    print(f"{len(r.unknown_durations)} tests not in {args.durations_path.name} "
          "(each given the average)")
    for tests, what in ((r.missing, "in no shard"), (r.twice, "in more than one shard"),
                        (r.extra, "in a shard but not in the whole suite")):
        if tests:
            print(f"{len(tests)} tests {what}, e.g. {tests[0]}", file=sys.stderr)
    if r.exact:
        print("every test is in exactly one shard")
    return 0 if r.exact else 1


if __name__ == "__main__":
    sys.exit(main())
