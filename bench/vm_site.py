#!/usr/bin/env python3
"""VM power-on -> Ready through a hybrid site vs a standalone site, each run N times.

The hybrid runs are scenarios/vm/vm-hybrid.yaml as committed (cloud Control Plane
behind NAT, the egress filter and WireGuard, TLS, Kea DDNS into BIND, chrony). The
standalone runs are the same file with the site's own Control Plane instead: location
site, no WAN, the cluster standalone — same VMs, same DNS and NTP, so the difference
is what the WAN and the cloud add. Each machine's figure is the Control Plane's
node.ready event minus its power-on; a run's figure is the median of its machines.

A script, not a test (timings never live in tests); run it as root::

    .venv/bin/python bench/vm_site.py              # 3 runs each
    .venv/bin/python bench/vm_site.py --runs 5

Writes bench/results/vm-hybrid.json: the command, date, commit, load, every run with
each machine's figure and verdict, and per site the median and spread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
from harness.scenario.model import Scenario  # noqa: E402

SCENARIO = REPO / "scenarios" / "vm" / "vm-hybrid.yaml"


def standalone_of(hybrid: Scenario) -> Scenario:
    """``hybrid`` on a standalone site: the Control Plane on the management segment, no
    WAN router, every cluster standalone; everything else (VMs, DHCP, DNS, NTP, the
    expectations but the WAN rules) as it is."""
    data = hybrid.model_dump(mode="json", by_alias=True, exclude={"schema_ref"},
                             exclude_none=True)
    data["name"] = f"{hybrid.name}-standalone"
    data["control_plane"] = {**data.get("control_plane", {}), "location": "site"}
    data.pop("wan", None)
    data["clusters"] = [{**c, "mode": "standalone"} for c in data["clusters"]]
    expect = dict(data.get("expect", {}))
    expect["rules"] = [r for r in expect.get("rules", []) if not r.startswith("WAN-")]
    data["expect"] = expect
    return Scenario.model_validate(data)


def run_one(scenario: Scenario, reports: Path) -> dict[str, Any]:
    """One run: each machine's power-on -> Ready, the run's verdict and wall time."""
    load = loadavg()
    started = time.monotonic()
    result = ScenarioRunner(scenario, reports_dir=reports).run()
    wall = time.monotonic() - started
    machines = {m.name: (round(m.ready_seconds, 2) if m.ready_seconds is not None else None)
                for m in result.machines}
    ready = [s for s in machines.values() if s is not None]
    return {"verdict": str(result.verdict), "error": result.error, "lab": result.lab_id,
            "wall_s": round(wall, 2), "ready_s": machines,
            "ready_median_s": round(statistics.median(ready), 2) if ready else None,
            "all_ready": len(ready) == len(machines), "loadavg_at_start": load}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results"
                        / "vm-hybrid.json")
    parser.add_argument("--reports", type=Path, default=REPO / "reports" / "bench-vm-site")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("run as root (labs need network namespaces and libvirt)", file=sys.stderr)
        return 2
    hybrid = load_scenario(SCENARIO)
    sites = {"hybrid": hybrid, "standalone": standalone_of(hybrid)}
    doc = stamp("python bench/vm_site.py " + " ".join(argv if argv is not None
                                                      else sys.argv[1:]), args.runs)
    doc["subject"] = ("VM power-on -> Ready (Control Plane node.ready event), "
                      f"{len(hybrid.machines)} VMs per run (TCG), hybrid vs standalone site")
    doc["sites"] = {}
    # alternate the two sites, so a change in the host's load hits both alike
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sites}
    for _ in range(args.runs):
        for name, scenario in sites.items():
            runs[name].append(run_one(scenario, args.reports))
            r = runs[name][-1]
            print(f"{name}: {r['verdict']} ready {r['ready_s']} wall {r['wall_s']} s "
                  f"(load {r['loadavg_at_start']})", flush=True)
    for name, rows in runs.items():
        per_run = [r["ready_median_s"] for r in rows if r["ready_median_s"] is not None]
        every = [s for r in rows for s in r["ready_s"].values() if s is not None]
        doc["sites"][name] = {"scenario": sites[name].name, "runs": rows,
                              "ready_s_run_medians": spread(per_run),
                              "ready_s_all_machines": spread(every),
                              "verdicts": [r["verdict"] for r in rows]}
        print(f"{name}: power-on -> Ready median {spread(per_run)['median']} s over "
              f"{len(per_run)} runs ({spread(per_run)['min']}-{spread(per_run)['max']})")
    doc["loadavg_at_end"] = loadavg()
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(r["verdict"] == "pass" for rows in runs.values() for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
