#!/usr/bin/env python3
"""CPU and size of a results bundle at several gzip levels, interleaved rounds.

    .venv/bin/python bench/bundle_gzip.py reports/runs/boot-storm-<lab>/flexlab-*.tar.gz \\
        --levels 9,6,1 --runs 3 --results bench/results/bundle-gzip-levels.json

Every scenario run writes a tar.gz of its pcaps, logs and reports (harness/reports/
bundle.py), and the suite is CPU-bound on 2 cores: this unpacks one bundle and packs its
files again with the bundle writer's own ``pack_tree`` at each level,
timing the CPU (``time.process_time``) and keeping the size.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from bench.provenance import loadavg, spread, stamp  # noqa: E402
from harness.reports.bundle import pack_tree  # noqa: E402

__all__ = ["main", "pack"]


def pack(root: Path, target: Path, level: int) -> tuple[float, int]:
    """Pack ``root``'s files into ``target`` at gzip ``level``: (CPU seconds, bytes)."""
    started = time.process_time()
    pack_tree(root, target, level)
    return time.process_time() - started, target.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--levels", default="9,6,1")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--results", type=Path, required=True)
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",") if x]
    if not args.bundle.is_file() or any(not 0 <= lv <= 9 for lv in levels):
        parser.error("give an existing bundle and gzip levels 0-9")
    doc: dict[str, Any] = stamp("python bench/bundle_gzip.py <bundle of "
                                f"{args.bundle.name}> --levels {args.levels} --runs "
                                f"{args.runs}", args.runs)
    with tempfile.TemporaryDirectory(prefix="flexlab-gzip-") as tmp:
        root = Path(tmp) / "files"
        with tarfile.open(args.bundle, "r:gz") as tar:
            tar.extractall(root, filter="data")
        doc["files_bytes"] = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        runs: list[dict[str, Any]] = []
        for round_no in range(1, args.runs + 1):
            for level in levels:
                cpu, size = pack(root, Path(tmp) / f"l{level}.tar.gz", level)
                runs.append({"round": round_no, "level": level, "cpu_s": round(cpu, 3),
                             "bytes": size})
                print(f"round {round_no} level {level}: {cpu:.2f} CPU-s, {size} bytes",
                      flush=True)
    doc["runs_detail"] = runs
    doc["summary"] = {str(level): {"cpu_s": spread([r["cpu_s"] for r in runs
                                                    if r["level"] == level]),
                                   "bytes": next(r["bytes"] for r in runs if r["level"] == level)}
                      for level in levels}
    doc["loadavg_at_end"] = loadavg()
    args.results.write_text(json.dumps(doc, indent=2) + "\n")
    for level, s in doc["summary"].items():
        c = s["cpu_s"]
        print(f"level {level}: {c['median']} CPU-s ({c['min']}-{c['max']}), {s['bytes']} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
