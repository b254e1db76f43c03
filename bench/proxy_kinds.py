#!/usr/bin/env python3
"""What running the Boot Proxy as its container (the sim tier's default) costs against a
plain process: sim scenarios timed both ways, runs interleaved (container, process,
container, …) so the shared host's load drifts over both alike.

A script, not a test (timings never live in tests): run it as root::

    .venv/bin/python bench/proxy_kinds.py                  # the default set, 3 runs each way
    .venv/bin/python bench/proxy_kinds.py --runs 5 scenarios/smoke.yaml

Per run: wall time, the ``site`` phase (where the proxies start and become ready), the
teardown phase (where they are removed), the verdict and the 1-minute load average
before it. Writes bench/results/proxy-kinds.json (command, date, commit, versions, load,
every run, median and spread per scenario and kind, and the set's total of medians).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from bench.provenance import loadavg, spread, stamp  # noqa: E402
from harness.builder.runner import ScenarioRunner  # noqa: E402
from harness.scenario.loader import load_scenario  # noqa: E402

KINDS = ("container", "process")
DEFAULT = ["scenarios/smoke.yaml", "scenarios/relay.yaml", "scenarios/multi-proxy.yaml",
           "scenarios/control-plane-outage.yaml", "scenarios/wan-outage.yaml"]


def run_one(path: str, kind: str, reports: Path) -> dict[str, Any]:
    """One run of ``path`` with its proxies as ``kind``."""
    load_before = round(os.getloadavg()[0], 2)
    runner = ScenarioRunner(load_scenario(REPO / path), reports_dir=reports,
                            boot_proxy_kind=kind)  # type: ignore[arg-type]
    kinds = sorted({p.kind for p in runner.plan.proxies})
    started = time.monotonic()
    result = runner.run()
    wall = time.monotonic() - started
    phases = {name: round(end - start, 2) for name, start, end in result.phases}
    return {"kind": kind, "planned_kinds": kinds, "wall_s": round(wall, 2),
            "site_s": phases.get("site"), "teardown_s": phases.get("teardown"),
            "machines_s": phases.get("machines"), "verdict": str(result.verdict),
            "error": result.error, "lab": result.lab_id, "load1_before": load_before}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=DEFAULT)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path,
                        default=REPO / "bench" / "results" / "proxy-kinds.json")
    parser.add_argument("--reports", type=Path, default=REPO / "reports" / "bench-kinds")
    args = parser.parse_args(argv)
    doc = stamp("python bench/proxy_kinds.py " + " ".join(argv or sys.argv[1:]), args.runs)
    rows = []
    for path in args.scenarios:
        runs = [run_one(path, kind, args.reports)
                for _ in range(args.runs) for kind in KINDS]
        row: dict[str, Any] = {"scenario": path, "runs": runs}
        for kind in KINDS:
            mine = [r for r in runs if r["kind"] == kind]
            row[kind] = {key: spread([r[key] for r in mine if r[key] is not None])
                         for key in ("wall_s", "site_s", "teardown_s", "machines_s")}
            row[kind]["verdicts"] = [r["verdict"] for r in mine]
        rows.append(row)
        print(f"{path}: " + "; ".join(
            f"{k} wall {row[k]['wall_s']['median']} s ({row[k]['wall_s']['min']}-"
            f"{row[k]['wall_s']['max']}), site {row[k]['site_s']['median']} s, "
            f"{'/'.join(row[k]['verdicts'])}" for k in KINDS), flush=True)
    totals = {kind: round(sum(r[kind]["wall_s"]["median"] for r in rows), 2) for kind in KINDS}
    doc.update({"scenarios": rows, "total_of_wall_medians_s": totals,
                "container_over_process": round(totals["container"] / totals["process"], 3),
                "loadavg_at_end": loadavg()})
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"total of wall medians: {totals}; wrote {args.out}")
    return 0 if all(r["verdict"] == "pass" for row in rows for r in row["runs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
