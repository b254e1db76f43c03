#!/usr/bin/env python3
"""A cached node image build (``python -m nodeimage build``) of several trees, interleaved.

    .venv/bin/python bench/nodeimage_ab.py --runs 5 \\
        --config before=<worktree> --config after=. \\
        --results bench/results/nodeimage-cached-ab.json

Every lab that boots the node image (each vm-tier test, and the accelerator probe of each
pytest worker) asks for the image first, so a build that is already cached is paid per
lab. This times that call in each configuration (``NAME=TREE[:VAR=VALUE,...]``, as in
bench/storm_ab.py) in turn, ``--runs`` rounds, as the subprocess a user would start, and
writes every run and each configuration's spread. A run that did not find its image
cached is counted apart, never as a time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
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
    finish_ab,
    in_turn,
    parse_configs,
)

__all__ = ["main", "one_build", "summarise"]


def one_build(config: Config) -> dict[str, Any]:
    """One ``python -m nodeimage build`` of ``config``'s tree: wall seconds, exit, cached."""
    tree = config.tree.resolve()
    started = time.monotonic()
    proc = subprocess.run([str(tree / ".venv" / "bin" / "python"), "-m", "nodeimage", "build"],
                          cwd=tree, env={**os.environ, **config.env}, capture_output=True,
                          text=True, check=False)
    seconds = time.monotonic() - started
    said = (proc.stderr + proc.stdout).strip().splitlines()
    cached = any(line.startswith("nodeimage: cached ") for line in said)
    return {"config": config.name, "seconds": round(seconds, 3), "exit": proc.returncode,
            # what the builder said, without the output path (results files name no host path)
            "cached": cached, "said": [line for line in said if line.startswith("nodeimage:")],
            "loadavg": loadavg()}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Spread of one configuration's cached builds; uncached or failed runs apart."""
    good = [r["seconds"] for r in runs if r["exit"] == 0 and r["cached"]]
    return {"seconds": spread(good, 3), "runs_not_cached_or_failed": len(runs) - len(good)}


def main(argv: list[str] | None = None) -> int:
    """Build the configurations in turn, ``--runs`` rounds; write and print the spreads."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_ab_arguments(parser, runs=5)
    args = parser.parse_args(argv)
    configs = parse_configs(parser, args.config)
    doc = ab_document("nodeimage_ab.py", argv, args, configs)
    for c in configs:  # a warm-up, not counted: the first may build or fill a memo
        one_build(c)
    runs = in_turn(configs, args.runs, one_build,
                   lambda r: f"{r['seconds']:.2f} s cached={r['cached']} exit={r['exit']}")
    finish_ab(doc, runs, configs, summarise, args.results)
    for name, s in doc["summary"].items():
        sec = s["seconds"]
        print(f"{name}: {sec['median']} s ({sec['min']}-{sec['max']}), "
              f"{s['runs_not_cached_or_failed']} not cached or failed")
    return 0 if all(s["runs_not_cached_or_failed"] == 0 for s in doc["summary"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
