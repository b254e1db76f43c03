#!/usr/bin/env python3
"""Time the test suite (or a part of it) as scripts/run-tests.sh runs it, several times,
and keep the figures in bench/results/suite.json (docs/BENCHMARKS.md reads them).

    # as root; everything after -- goes to pytest
    .venv/bin/python scripts/suite-timing.py --what "unit tier" --workers 4 --runs 3 -- --tier unit
    .venv/bin/python scripts/suite-timing.py --what "shard 1/2" --shard 1/2 --runs 1
    .venv/bin/python scripts/suite-timing.py --what "make test" --lint --runs 1

Each measurement (one ``--what``) records the runs' wall times (median, min, max), the
number of tests and how many failed, the workers, the shard, and the date, commit and
load averages it was taken at; a new measurement of the same ``--what`` replaces the old.
Lint and mypy are left out unless ``--lint`` (they time the linters, not the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.provenance import commit, loadavg, spread, stamp  # noqa: E402
from bench.report import render_dir  # noqa: E402

RESULTS = REPO / "bench" / "results" / "suite.json"
DOC = REPO / "docs" / "BENCHMARKS.md"


def junit_counts(path: Path) -> dict[str, int]:
    """tests / failures / errors / skipped of one JUnit file."""
    suite = next(ET.parse(path).getroot().iter("testsuite"))
    return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}


def junit_failed(path: Path) -> list[str]:
    """Each failed or erroring test of one JUnit file as "classname::name: first line of
    the message": the JUnit file lives in a temporary directory, and a timing run that
    failed must still say what failed."""
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        for bad in (*case.findall("failure"), *case.findall("error")):
            message = (bad.get("message") or bad.tag).strip().splitlines()
            out.append(f"{case.get('classname')}::{case.get('name')}: "
                       f"{message[0][:300] if message else bad.tag}")
    return out


def one_run(workers: int, shard: str | None, lint: bool, pytest_args: list[str],
            log: Path | None = None) -> dict[str, object]:
    """scripts/run-tests.sh once: wall seconds, exit status, JUnit counts."""
    with tempfile.TemporaryDirectory(prefix="flexlab-timing-") as tmp:
        junit = Path(tmp) / "junit.xml"
        env = {**os.environ, "FLEXLAB_TEST_WORKERS": str(workers),
               "FLEXLAB_LINT": "1" if lint else "0"}
        if shard:
            env["FLEXLAB_TEST_SHARD"] = shard
        argv = [str(REPO / "scripts" / "run-tests.sh"), f"--junitxml={junit}",
                f"--flexlab-reports={tmp}", *pytest_args]
        load = loadavg()
        started = time.monotonic()
        proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True,
                              check=False)
        wall = time.monotonic() - started
        counts = junit_counts(junit) if junit.is_file() else {}
        failed = junit_failed(junit) if junit.is_file() else []
        if log is not None:
            log.write_text(proc.stdout + proc.stderr)
    tail = proc.stdout.strip().splitlines()[-3:]
    print(f"  {wall:.0f} s, exit {proc.returncode}, {counts}, load at start {load}: "
          f"{' | '.join(tail)}", flush=True)
    for line in failed:
        print(f"  FAILED {line}", flush=True)
    return {"wall_s": round(wall, 1), "exit": proc.returncode, "loadavg_at_start": load,
            **counts, "failed": failed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", required=True, help="the row's name")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument("--shard", default=None, help="i/n: one pytest-split shard")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lint", action="store_true", help="time ruff and mypy too")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--log", type=Path, default=None, help="keep the last run's output")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args(argv)
    command = "python scripts/suite-timing.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    print(f"{args.what}: {args.runs} runs, {args.workers} workers", flush=True)
    runs = [one_run(args.workers, args.shard, args.lint, args.pytest_args, args.log)
            for _ in range(args.runs)]
    walls = [float(r["wall_s"]) for r in runs]  # type: ignore[arg-type]
    row = {"what": args.what, "command": command, "date_utc": time.strftime(
        "%Y-%m-%d %H:%M:%SZ", time.gmtime()), "commit": commit(),
        "workers": args.workers, "shard": args.shard, "lint": args.lint,
        "pytest_args": args.pytest_args, "tests": runs[-1].get("tests"),
        "wall_s": spread(walls, 1), "runs": runs}
    doc = json.loads(args.out.read_text()) if args.out.is_file() else {}
    rows = [r for r in doc.get("measurements", []) if r.get("what") != args.what]
    rows.append(row)
    doc = {**doc, **stamp(command, runs=min(len(r["runs"]) for r in rows)),
           "measurements": rows}
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    args.doc.write_text(render_dir(args.out.parent))
    print(f"{args.what}: wall median {row['wall_s']['median']} s "  # type: ignore[index]
          f"({row['wall_s']['min']}-{row['wall_s']['max']}) over {len(runs)} runs; "  # type: ignore[index]
          f"wrote {args.out}")
    return 0 if all(r["exit"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
