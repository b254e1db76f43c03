#!/usr/bin/env python3
"""The host CPU and wall time of one pytest selection, in several configurations, in turn.

    .venv/bin/python bench/cpu_ab.py --runs 3 \\
        --config plain=.:FLEXLAB_FORKSERVER=0 --config forked=. \\
        --results bench/results/forkserver-cpu-ab.json -- \\
        -p no:xdist -k process tests/sim/matrix/test_firmware_matrix.py

The suite is CPU-bound on 2 cores, so a change that saves CPU is measured as CPU: each
run is ``scripts/cpu-by-kind.py`` around ``python -m pytest -q <selection>`` of that
configuration's tree (``NAME=TREE[:VAR=VALUE,...]``, as in bench/storm_ab.py), with its
environment; one run of each configuration per round, ``--runs`` rounds. It writes every
run (wall, host busy CPU-s, CPU-s by kind of process, exit) and each configuration's
spread. A run whose tests did not all pass is counted apart, never as a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from bench.child import run_child  # noqa: E402
from bench.provenance import loadavg, spread  # noqa: E402
from bench.storm_ab import (  # noqa: E402
    Config,
    ab_document,
    add_ab_arguments,
    finish_ab,
    in_turn,
    parse_configs,
)

__all__ = ["main", "one_run", "summarise"]


def one_run(config: Config, selection: list[str]) -> dict[str, Any]:
    """``selection`` under pytest in ``config``'s tree, measured by its cpu-by-kind."""
    tree = config.tree.resolve()
    python = str(tree / ".venv" / "bin" / "python")
    with tempfile.TemporaryDirectory(prefix="flexlab-cpu-ab-") as tmp:
        out = Path(tmp) / "cpu.json"
        proc = run_child(
            [python, str(tree / "scripts" / "cpu-by-kind.py"), "--interval", "0.5",
             "--out", str(out), "--", python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             *selection],
            cwd=tree, env={**os.environ, **config.env})
        if not out.is_file():
            raise SystemExit(f"{config.name}: cpu-by-kind wrote nothing (exit "
                             f"{proc.returncode}):\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
        doc = json.loads(out.read_text())
    tail = [line for line in proc.stdout.splitlines() if " in " in line and "passed" in line]
    return {"config": config.name, "exit": doc["exit"], "wall_s": doc["wall_s"],
            "host_busy_cpu_s": doc["host_busy_cpu_s"], "cpu_s_by_kind": doc["cpu_s_by_kind"],
            "pytest_said": tail[-1].strip("= ") if tail else "", "loadavg": loadavg()}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Spread of a configuration's passing runs: wall, host CPU, and CPU of each kind."""
    good = [r for r in runs if r["exit"] == 0]
    kinds = sorted({k for r in good for k in r["cpu_s_by_kind"]})
    return {"wall_s": spread([r["wall_s"] for r in good], 1),
            "host_busy_cpu_s": spread([r["host_busy_cpu_s"] for r in good], 1),
            "cpu_s_by_kind": {k: spread([r["cpu_s_by_kind"].get(k, 0.0) for r in good], 1)
                              for k in kinds},
            "runs_failed": len(runs) - len(good)}


def main(argv: list[str] | None = None) -> int:
    """Run the configurations in turn, ``--runs`` rounds; write and print the spreads."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_ab_arguments(parser, runs=3)
    parser.add_argument("selection", nargs="+", help="pytest arguments (after --)")
    args = parser.parse_args(argv)
    configs = parse_configs(parser, args.config)
    doc = ab_document("cpu_ab.py", argv, args, configs)
    doc["selection"] = args.selection
    runs = in_turn(configs, args.runs, lambda c: one_run(c, args.selection),
                   lambda r: f"{r['wall_s']} s wall, {r['host_busy_cpu_s']} CPU-s, "
                             f"exit {r['exit']}")
    finish_ab(doc, runs, configs, summarise, args.results)
    for name, s in doc["summary"].items():
        cpu, wall = s["host_busy_cpu_s"], s["wall_s"]
        print(f"{name}: {cpu['median']} CPU-s ({cpu['min']}-{cpu['max']}), wall "
              f"{wall['median']} s ({wall['min']}-{wall['max']}), {s['runs_failed']} failed")
    return 0 if all(s["runs_failed"] == 0 for s in doc["summary"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
