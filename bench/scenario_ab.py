#!/usr/bin/env python3
"""Scenario runs of several code trees or settings, interleaved on one host: an A/B that can
tell.

    .venv/bin/python bench/scenario_ab.py --runs 3 scenarios/relay-skips-proxy.yaml \\
        --config before=<worktree> --config after=. \\
        --results bench/results/relay-skips-proxy-ab.json

A scenario's wall time moves with the host's load, so trees measured in different hours
cannot be compared. This runs each configuration (``NAME=TREE[:VAR=VALUE,...]``, as in
bench/storm_ab.py) in turn, ``--runs`` rounds, each a fresh ``bench/site_scenarios.py
--runs 1`` of that tree over the scenario files given, and writes every run and each
configuration's spread per scenario (wall, machines phase) with its verdicts. A run that
did not pass is counted apart, never as a time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from bench.provenance import loadavg, spread  # noqa: E402
from bench.storm_ab import (  # noqa: E402
    Config,
    ab_document,
    add_ab_arguments,
    parse_configs,
    run_results,
)

__all__ = ["main", "summarise"]


def _one(config: Config, scenarios: list[str], round_no: int) -> list[dict[str, Any]]:
    """One run of every scenario in ``config``'s tree; one record per scenario."""
    doc, rc = run_results(config, "site_scenarios.py", ["--runs", "1", *scenarios],
                          results_flag="--out")
    records = []
    for row in doc.get("scenarios", []):
        run = (row.get("runs") or [{}])[0]
        records.append({"config": config.name, "round": round_no, "scenario": row["scenario"],
                        "exit": rc, "wall_s": run.get("wall_s"),
                        "machines_s": run.get("machines_s"), "verdict": run.get("verdict"),
                        "error": run.get("error"), "loadavg": loadavg()})
    return records


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Spread of one configuration's runs of one scenario; runs that did not pass apart."""
    passed = [r for r in runs if r.get("verdict") == "pass" and r.get("wall_s") is not None]
    return {"wall_s": spread([r["wall_s"] for r in passed]),
            "machines_s": spread([r["machines_s"] for r in passed
                                  if r.get("machines_s") is not None]),
            "runs_not_passed": len(runs) - len(passed),
            "verdicts": [r.get("verdict") for r in runs]}


def main(argv: list[str] | None = None) -> int:
    """Run the configurations in turn, ``--runs`` rounds; write and print the spreads."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("scenarios", nargs="+")
    add_ab_arguments(parser)
    args = parser.parse_args(argv)
    configs = parse_configs(parser, args.config)
    missing = [s for s in args.scenarios if not Path(s).is_file()]
    if missing:
        parser.error(f"no such scenario file: {', '.join(missing)}")
    doc = ab_document("scenario_ab.py", argv, args, configs)
    runs: list[dict[str, Any]] = []
    for round_no in range(1, args.runs + 1):
        for c in configs:
            for record in _one(c, args.scenarios, round_no):
                runs.append(record)
                print(f"round {round_no} {c.name} {record['scenario']}: "
                      f"{record['wall_s']} s {record['verdict']}", flush=True)
    doc["runs_detail"] = runs
    doc["summary"] = {c.name: {s: summarise([r for r in runs if r["config"] == c.name
                                             and r["scenario"] == s])
                               for s in args.scenarios} for c in configs}
    doc["loadavg_at_end"] = loadavg()
    args.results.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    for name, per in doc["summary"].items():
        for scenario, s in per.items():
            wall = s["wall_s"]
            print(f"{name} {scenario}: {wall['median']} s ({wall['min']}-{wall['max']}), "
                  f"{s['runs_not_passed']} not passed")
    return 0 if all(s["runs_not_passed"] == 0 for per in doc["summary"].values()
                    for s in per.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
