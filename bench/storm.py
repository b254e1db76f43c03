#!/usr/bin/env python3
"""Boot storm: N BIOS + N UEFI emulated machines power on at once; time until all are Ready.

A script, not a test: run it as root::

    .venv/bin/python bench/storm.py                 # 500 + 500 machines
    .venv/bin/python bench/storm.py --per-kind 50   # a quick one

It loads scenarios/boot-storm.yaml and changes it in code (the file keeps its
200 machines for CI): each machine group gets ``--per-kind`` copies. The
scenario runner (harness.builder.runner.ScenarioRunner) builds the site —
Control Plane, site DHCP, the reference Boot Proxy — and the sim driver plays
every machine's firmware; the run result gives each machine's power-on →
Ready time (from the Control Plane's ``node.ready`` event). "Retransmissions"
counts DHCP requests a machine sent again because no answer came in time (a
``sent`` of the same message with no ``received`` in between): the storm's
drops as the clients saw them. Writes bench/results/storm.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from bench.errors import BenchError  # noqa: E402
from bench.report import summary_rows  # noqa: E402
from bench.stats import percentiles  # noqa: E402
from harness.builder.runner import ScenarioRunner  # noqa: E402
from harness.judge.result import MachineResult, RunResult  # noqa: E402
from harness.lab.topology import Topology  # noqa: E402
from harness.plan import SitePlan  # noqa: E402
from harness.scenario.loader import load_scenario  # noqa: E402
from harness.scenario.model import Scenario  # noqa: E402

__all__ = ["main", "retransmissions", "run_storm", "storm_scenario", "summarise_run"]

SCENARIO = REPO / "scenarios" / "boot-storm.yaml"
RESULTS = REPO / "bench" / "results" / "storm.json"


def storm_scenario(per_kind: int, path: Path = SCENARIO, timeout: float | None = None
                   ) -> Scenario:
    """The boot-storm scenario with every machine group resized to ``per_kind`` copies."""
    base = load_scenario(path)
    machines = [m.model_copy(update={"count": per_kind, "macs": None}) for m in base.machines]
    update: dict[str, Any] = {"machines": machines,
                              "name": f"boot-storm-{per_kind * len(machines)}"}
    if timeout is not None:
        update["timeout"] = timeout
    clusters = [c.model_copy(update={"expected_nodes": None}) for c in base.clusters]
    update["clusters"] = clusters
    # model_copy skips validation: round-trip through the model so a bad count still fails here
    return Scenario.model_validate(base.model_copy(update=update).model_dump(by_alias=True))


def _root_networks() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True,
                         timeout=10, check=False).stdout or "[]"
    nets = []
    for link in json.loads(out):
        for a in link.get("addr_info", []):
            nets.append(ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False))
    return nets


def wide_subnet(prefix: int = 20) -> str:
    """A random private /``prefix`` in 10.64.0.0/10 that no root-namespace address uses."""
    pool = ipaddress.IPv4Network("10.64.0.0/10")
    taken = _root_networks()
    rng = random.SystemRandom()
    for _ in range(200):
        net = rng.choice(list(pool.subnets(new_prefix=prefix)))
        if not any(net.overlaps(t) for t in taken):
            return str(net)
    raise BenchError(f"no free /{prefix} in {pool} for the storm segment")


def widen(site: SitePlan, prefix: int = 20) -> SitePlan:
    """The same plan with every segment on a /``prefix``.

    Scenario segments get a random /24, whose site DHCP pool (the upper half)
    holds 127 leases: 1,000 machines would mostly wait for an address that never
    comes. The benchmark measures the proxies and the harness, not pool
    exhaustion, so it gives the segments room (a /20: 2,047 leases).
    """
    segments = tuple(dataclasses.replace(seg, subnet=wide_subnet(prefix))
                     for seg in site.topology.segments)
    topology = Topology(segments=segments, hosts=site.topology.hosts)
    topology.validate()
    return dataclasses.replace(site, topology=topology)


def retransmissions(machine: MachineResult) -> int:
    """DHCP requests the machine sent again in the same boot phase (its view of drops).

    A phase runs from one ``state`` event to the next (dhcp-discover, dhcp-request,
    pxe-request …); every DISCOVER or REQUEST beyond the first of its kind in a
    phase is a retransmission: the firmware timed out waiting for an answer.
    """
    count = 0
    seen: dict[str, int] = {}
    for event in machine.timeline:
        if event.kind == "state":
            seen = {}
        elif event.kind == "sent":
            word = event.summary.split()[0] if event.summary else ""
            if word in ("DISCOVER", "REQUEST"):
                seen[word] = seen.get(word, 0) + 1
                if seen[word] > 1:
                    count += 1
    return count


def summarise_run(result: RunResult, per_kind: int) -> dict[str, Any]:
    """The storm's figures from one run result: all-Ready time, percentiles, drops, verdict."""
    ready = [m for m in result.machines if m.state == "Ready" and m.ready_seconds is not None]
    times = [m.ready_seconds for m in ready if m.ready_seconds is not None]
    phases = {name: round(end - start, 2) for name, start, end in result.phases}
    retries = sum(retransmissions(m) for m in result.machines)
    reasons = Counter(re.sub(r"-?\d+(\.\d+)?", "N", r)
                      for m in result.machines if m.state != "Ready" for r in m.reasons[:1])
    return {
        "states": dict(Counter(m.state for m in result.machines).most_common()),
        "not_ready_reasons": dict(reasons.most_common(3)),
        "machines": len(result.machines) or per_kind * 2,
        "per_kind": per_kind,
        "ready": len(ready),
        "not_ready": len(result.machines) - len(ready),
        "time_to_all_ready_s": round(max(times), 2) if times and len(ready) == len(
            result.machines) else None,
        "ready_s": {k: (None if v is None else round(v / 1000, 3))
                    for k, v in percentiles([t * 1000 for t in times]).items()},
        "dhcp_retransmissions": retries,
        "machines_with_retransmissions": sum(1 for m in result.machines
                                             if retransmissions(m) > 0),
        "phases_s": phases,
        "wall_s": round(result.duration, 1),
        "verdict": result.verdict,
        "error": result.error,
        "failed_expectations": [f"{e.kind} {e.subject}: {e.detail or e.description}"
                                for e in result.expectations if e.verdict == "fail"][:10],
        "time_scale": result.scenario.get("time_scale"),
        "versions": result.versions,
    }


def run_storm(per_kind: int, results: Path = RESULTS, timeout: float | None = None
              ) -> dict[str, Any]:
    """Run the resized storm once and write its JSON (the lab is torn down by the runner)."""
    scenario = storm_scenario(per_kind, timeout=timeout)
    t0 = time.time()
    runner = ScenarioRunner(scenario, reports_dir=REPO / "reports" / "bench",
                            scenario_file=SCENARIO)
    runner.plan = widen(runner.plan)
    result = runner.run()
    doc = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t0)),
           "scenario": f"{SCENARIO.relative_to(REPO)} with count={per_kind} per group",
           "segment_prefix": 20,
           **summarise_run(result, per_kind)}
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the storm, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-kind", type=int, default=500, help="machines per firmware kind")
    parser.add_argument("--timeout", type=float, default=None, help="scenario timeout (s)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/storm.py needs root (it builds network namespaces)", file=sys.stderr)
        return 2
    try:
        doc = run_storm(args.per_kind, args.results, args.timeout)
    except BenchError as exc:
        print(f"storm: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in doc.items() if k != "versions"}, indent=2))
    # the same one-line row as bench/run.py: the run's verdict first, then its figures
    [(_, subject, figure)] = summary_rows({"storm": doc})
    print(f"boot storm, {subject}: {figure}")
    return 0 if doc["verdict"] == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
