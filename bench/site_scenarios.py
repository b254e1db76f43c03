#!/usr/bin/env python3
"""Whole-site scenarios, timed: each run N times, the median and spread of the wall time
and of the machine phase, each run's verdict beside its figure.

A script, not a test (timings never live in tests): run it as root::

    .venv/bin/python bench/site_scenarios.py                       # the site scenarios, 3 runs
    .venv/bin/python bench/site_scenarios.py --runs 5 scenarios/smoke.yaml

Writes bench/results/site-scenarios.json with the command, date, commit and every run,
so a figure quoted in a note can be traced to the runs behind it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from bench.report import runs_verdict  # noqa: E402
from harness.builder.runner import ScenarioRunner  # noqa: E402
from harness.scenario.loader import load_scenario  # noqa: E402

DEFAULT = ["scenarios/standalone-site.yaml", "scenarios/kea-site.yaml",
           "scenarios/hybrid-site.yaml", "scenarios/blocked-port.yaml",
           "scenarios/tls-wrong-ca.yaml", "scenarios/wan-outage.yaml"]


def _commit() -> str:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() or "unknown"


def summary(values: list[float]) -> dict[str, float | None]:
    """Median, min and max (None when nothing was measured)."""
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2)}


def run_one(path: str, reports: Path) -> dict[str, Any]:
    """One run: its wall time, the machine phase and the verdict."""
    scenario = load_scenario(REPO / path)
    started = time.monotonic()
    result = ScenarioRunner(scenario, reports_dir=reports).run()
    wall = time.monotonic() - started
    phases = {name: round(end - start, 2) for name, start, end in result.phases}
    return {"wall_s": round(wall, 2), "machines_s": phases.get("machines"),
            "verdict": str(result.verdict), "error": result.error, "lab": result.lab_id}


def summary_line(row: dict[str, Any]) -> str:
    """One scenario's printed row: its runs' verdicts first (each run's, in order), then the
    wall time's median and range."""
    wall = row["wall_s"]
    return (f"{row['scenario']}: {runs_verdict(row['verdicts'])} — wall median "
            f"{wall['median']} s ({wall['min']}-{wall['max']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=DEFAULT)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results"
                        / "site-scenarios.json")
    parser.add_argument("--reports", type=Path, default=REPO / "reports" / "bench-site")
    args = parser.parse_args(argv)
    rows = []
    for path in args.scenarios:
        runs = [run_one(path, args.reports) for _ in range(args.runs)]
        rows.append({"scenario": path, "runs": runs,
                     "wall_s": summary([r["wall_s"] for r in runs]),
                     "machines_s": summary([r["machines_s"] for r in runs
                                            if r["machines_s"] is not None]),
                     "verdicts": [r["verdict"] for r in runs]})
        print(summary_line(rows[-1]))
    doc = {"command": "python bench/site_scenarios.py " + " ".join(argv or sys.argv[1:]),
           "date_utc": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
           "commit": _commit(), "runs_per_scenario": args.runs, "scenarios": rows}
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(v == "pass" for r in rows for v in r["verdicts"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
