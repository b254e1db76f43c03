#!/usr/bin/env python3
"""VM boots of several code trees or settings, interleaved on one host: an A/B that can tell.

    .venv/bin/python bench/vmboot_ab.py --runs 3 --machine bios,uefi \\
        --config debian-kernel=.:FLEXLAB_NODE_KERNEL=debian \\
        --config flexlab-kernel=.:FLEXLAB_NODE_KERNEL=flexlab \\
        --results bench/results/vmboot-kernel-ab.json

A VM's boot under TCG moves with the host's load, so configurations measured in
different hours cannot be compared. This boots each configuration in turn, ``--runs``
rounds, each a fresh ``bench/vmboot.py --runs 1`` of that tree with that configuration's
environment (a configuration is ``NAME=TREE[:VAR=VALUE,...]``, as in bench/storm_ab.py),
and writes every boot, each configuration's power-on -> Ready spread per machine and the
median console marks to one results file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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

# vmboot.py keeps SeaBIOS at the top level and OVMF under "ovmf"
_SECTION = {"bios": None, "uefi": "ovmf"}


def _one(config: Config, machines: str, timeout: float) -> list[dict[str, Any]]:
    """One boot of each machine of ``config``; one record per machine."""
    doc, rc = run_results(config, "vmboot.py", ["--runs", "1", "--machine", machines,
                                                "--timeout", str(timeout)])
    records = []
    for machine in machines.split(","):
        key = _SECTION[machine]
        section = doc if key is None else doc.get(key, {})
        run = (section.get("runs") or [{}])[0]
        records.append({"config": config.name, "machine": machine, "exit": rc,
                        "ready_s": run.get("ready_s"), "state": run.get("state"),
                        "verdict": run.get("verdict"), "console_s": run.get("console_s", {}),
                        "phase_split_s": run.get("phase_split_s", {}),
                        "loadavg": run.get("loadavg")})
    return records


def summarise(boots: list[dict[str, Any]]) -> dict[str, Any]:
    """Spread of one configuration's boots of one machine (a boot not Ready counts apart,
    never as a time) and the median of each console mark."""
    ready = [b["ready_s"] for b in boots if b.get("ready_s") is not None]
    marks = sorted({m for b in boots for m in b.get("console_s", {})})
    return {"ready_s": spread(ready), "boots_not_ready": len(boots) - len(ready),
            "verdicts": [b.get("verdict") for b in boots],
            "console_s_median": {m: round(statistics.median(
                b["console_s"][m] for b in boots if m in b.get("console_s", {})), 2)
                for m in marks}}


def main(argv: list[str] | None = None) -> int:
    """Boot the configurations in turn, ``--runs`` rounds; write and print the spreads."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_ab_arguments(parser)
    parser.add_argument("--machine", default="bios,uefi",
                        help="comma-separated: bios (SeaBIOS), uefi (OVMF)")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    machines = [m for m in args.machine.split(",") if m]
    if not machines or set(machines) - set(_SECTION):
        parser.error(f"--machine takes {', '.join(_SECTION)}; got {args.machine!r}")
    configs = parse_configs(parser, args.config)
    if os.geteuid() != 0:
        print("bench/vmboot_ab.py needs root (libvirt, namespaces)", file=sys.stderr)
        return 2
    doc = ab_document("vmboot_ab.py", argv, args, configs)
    boots: list[dict[str, Any]] = []
    for round_ in range(1, args.runs + 1):
        for c in configs:
            for record in _one(c, ",".join(machines), args.timeout):
                record["round"] = round_
                boots.append(record)
                print(f"round {round_} {c.name:20s} {record['machine']:5s} Ready in "
                      f"{record['ready_s']} s ({record['verdict']}, load {record['loadavg']})",
                      flush=True)
    doc["loadavg_at_end"] = loadavg()
    doc["summary"] = {c.name: {m: summarise([b for b in boots if b["config"] == c.name
                                             and b["machine"] == m]) for m in machines}
                      for c in configs}
    doc["runs"] = boots
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(doc, indent=2) + "\n")
    for name, per in doc["summary"].items():
        for machine, s in per.items():
            r = s["ready_s"]
            print(f"{name:20s} {machine:5s} Ready {r['median']} s ({r['min']}-{r['max']}), "
                  f"{s['boots_not_ready']} boots not Ready")
    return 0 if all(v == "pass" for per in doc["summary"].values() for s in per.values()
                    for v in s["verdicts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
