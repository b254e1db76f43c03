#!/usr/bin/env python3
"""Soak the sim tier: run every sim test and sim scenario N times under pytest-xdist and
count each test's outcomes; a test that passed in some rounds and failed in others is a
flake.

    make soak N=20                                  # as root: namespaces
    .venv/bin/python scripts/soak.py --rounds 3 --workers 4
    .venv/bin/python scripts/soak.py --rounds 5 tests/sim/matrix   # a part only

Writes bench/results/soak.json (command, date, commit, versions, load, each round's wall
time and every test's pass/fail counts, the first error of each failed one) and
regenerates docs/BENCHMARKS.md, whose flake table reads that file. A flake's cause, once
found and fixed, goes in ``--causes FILE`` (JSON: node id -> text) so the table says it.
Exit status 1 when any test flaked or always failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.provenance import loadavg, spread, stamp  # noqa: E402
from bench.report import render_dir  # noqa: E402

RESULTS = REPO / "bench" / "results" / "soak.json"
DOC = REPO / "docs" / "BENCHMARKS.md"


@dataclass
class Tally:
    """One test's outcomes over the rounds."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    first_error: str = ""
    failed_rounds: list[int] = field(default_factory=list)


def node_id(case: ET.Element) -> str:
    """The pytest node id of a JUnit test case (``file::name``; classes keep their dots)."""
    classname, name = case.get("classname", ""), case.get("name", "")
    file = case.get("file")
    if file:
        return f"{file}::{name}"
    if classname.endswith(".yaml"):  # a scenario file: pytest keeps its suffix
        path = classname[: -len(".yaml")].replace(".", "/") + ".yaml"
        if (REPO / path).is_file():
            return f"{path}::{name}"
    parts = classname.split(".")
    # pytest writes classname = dotted module path [+ .Class] (".py" dropped)
    for cut in range(len(parts), 0, -1):
        for suffix in (".py", ".yaml"):
            path = REPO / ("/".join(parts[:cut]) + suffix)
            if path.is_file():
                rest = "::".join([*parts[cut:], name])
                return f"{'/'.join(parts[:cut])}{suffix}::{rest}"
    return f"{classname}::{name}"


def outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """Test id -> (passed | failed | skipped, first line of the failure) of one round."""
    out: dict[str, tuple[str, str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            text = (bad.get("message") or bad.text or "").strip().splitlines()
            out[node_id(case)] = ("failed", text[0][:300] if text else "")
        elif case.find("skipped") is not None:
            out[node_id(case)] = ("skipped", "")
        else:
            out[node_id(case)] = ("passed", "")
    return out


def run_round(index: int, workers: int, selection: list[str], reports: Path
              ) -> tuple[float, dict[str, tuple[str, str]]]:
    """One pytest run of the selection; its wall time and each test's outcome."""
    junit = reports / f"soak-{index}.xml"
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rN",
            "--timeout=900", f"--junitxml={junit}", f"--flexlab-reports={reports}",
            *(["-n", str(workers), "--dist", "loadgroup"] if workers else []), *selection]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if not junit.is_file():
        raise SystemExit(f"round {index}: pytest wrote no JUnit (exit {proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return wall, outcomes(junit)


def _rounds(args: argparse.Namespace, selection: list[str]
            ) -> Iterator[tuple[int, float, dict[str, tuple[str, str]]]]:
    """(round number, wall seconds, outcomes) of each round: run now, or read back from
    ``--from-junit`` files (a round's wall is then its testsuite's time)."""
    if args.from_junit:
        for index, junit in enumerate(args.from_junit, 1):
            suite = next(ET.parse(junit).getroot().iter("testsuite"))
            yield index, float(suite.get("time", 0)), outcomes(junit)
        return
    with contextlib.ExitStack() as stack:
        # --keep-junit keeps the rounds for a later --from-junit tally across sittings
        reports = args.keep_junit or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="flexlab-soak-")))
        reports.mkdir(parents=True, exist_ok=True)
        for index in range(1, args.rounds + 1):
            yield index, *run_round(index, args.workers, selection, reports)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("selection", nargs="*",
                        help="pytest arguments choosing the tests (default: the sim tier, "
                        "tests and scenario files)")
    parser.add_argument("--rounds", "-N", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4, help="xdist workers (0: serial)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--causes", type=Path, default=None,
                        help="JSON {node id: cause} for flakes already explained")
    parser.add_argument("--from-junit", type=Path, nargs="+", default=None, metavar="XML",
                        help="tally these JUnit files (one per round, e.g. of CI runs) "
                        "instead of running rounds; a round's wall is its testsuite time")
    parser.add_argument("--keep-junit", type=Path, default=None, metavar="DIR",
                        help="write each round's JUnit (soak-N.xml) and reports into DIR and "
                        "keep them, so rounds run in several sittings can be tallied "
                        "together with --from-junit (default: a temp dir, removed)")
    parser.add_argument("--note", default="",
                        help="what a reader must know that the command does not say (e.g. "
                        "which commit each sitting's rounds ran at); kept in the file and "
                        "shown under the flake table")
    args = parser.parse_args(argv)
    selection = args.selection or ["--tier", "sim"]
    command = "python scripts/soak.py " + " ".join(argv if argv is not None else sys.argv[1:])
    doc = stamp(command, runs=args.rounds)
    causes = json.loads(args.causes.read_text()) if args.causes else {}
    tallies: dict[str, Tally] = {}
    walls: list[float] = []
    if args.from_junit:
        doc["runs"] = args.rounds = len(args.from_junit)
    for index, wall, round_outcomes in _rounds(args, selection):
        walls.append(wall)
        for test, (outcome, error) in round_outcomes.items():
            tally = tallies.setdefault(test, Tally())
            setattr(tally, outcome, getattr(tally, outcome) + 1)
            if outcome == "failed":
                tally.failed_rounds.append(index)
                tally.first_error = tally.first_error or error
        bad = sum(1 for o, _ in round_outcomes.values() if o == "failed")
        print(f"round {index}/{args.rounds}: {len(round_outcomes)} tests, {bad} failed, "
              f"{wall:.0f} s (load {loadavg()})", flush=True)

    def row(test: str, t: Tally) -> dict[str, object]:
        # an xfail (strict, so expected) and a skip are not failures: JUnit files them
        # as skipped, and they count with the passes here
        return {"test": test, "passed": t.passed + t.skipped, "failed": t.failed,
                "failed_rounds": t.failed_rounds, "first_error": t.first_error,
                "cause": causes.get(test)}

    flakes = [row(k, t) for k, t in sorted(tallies.items())
              if t.failed and (t.passed or t.skipped)]
    always = [row(k, t) for k, t in sorted(tallies.items())
              if t.failed and not (t.passed or t.skipped)]
    doc.update({"selection": " ".join(selection),
                "workers": None if args.from_junit else args.workers,
                "tests": len(tallies), "rounds": [round(w, 1) for w in walls],
                "round_wall_s": spread(walls, 1), "loadavg_at_end": loadavg(),
                "flakes": flakes, "always_failed": always})
    if args.note:
        doc["note"] = args.note
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    args.doc.write_text(render_dir(args.out.parent))
    print(f"{len(flakes)} flaky, {len(always)} failed every round, of {len(tallies)} tests; "
          f"wrote {args.out} and {args.doc}")
    return 1 if flakes or always else 0


if __name__ == "__main__":
    sys.exit(main())
