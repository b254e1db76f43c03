#!/usr/bin/env python3
"""Boot storm: N BIOS + N UEFI emulated machines power on at once; time until all are Ready.

A script, not a test: run it as root::

    .venv/bin/python bench/storm.py --runs 3               # 500 + 500 machines, 3 runs
    .venv/bin/python bench/storm.py --per-kind 50          # a quick one

It loads scenarios/boot-storm.yaml and changes it in code (the file keeps its
200 machines for CI): each machine group gets ``--per-kind`` copies. The
scenario runner (harness.builder.runner.ScenarioRunner) builds the site —
Control Plane, site DHCP, the reference Boot Proxy — and the sim driver plays
every machine's firmware; the run result gives each machine's power-on →
Ready time (from the Control Plane's ``node.ready`` event). "Retransmissions"
counts DHCP requests a machine sent again because no answer came in time (a
``sent`` of the same message with no ``received`` in between): the storm's
drops as the clients saw them. "Client phases" split each machine's boot by
the state it was in (DHCP, 4011, TFTP, HTTP, agent …): where the time went as
the machines saw it. Writes bench/results/storm-<machines>.json: the stamp
(command, date, commit, versions, load), every run with the host's load before
and after it, and the median run's figures at the top with the spread.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from bench import provenance  # noqa: E402
from bench.errors import BenchError  # noqa: E402
from bench.report import summary_rows  # noqa: E402
from bench.service_cpu import ServiceCpu, spread_by_service  # noqa: E402
from bench.stats import percentiles  # noqa: E402
from harness.builder.runner import ScenarioRunner  # noqa: E402
from harness.builder.sim_driver import PROCESSES_ENV, fleet_processes  # noqa: E402
from harness.exitcodes import INTERRUPTED  # noqa: E402
from harness.judge.result import MachineResult, RunResult  # noqa: E402
from harness.lab.topology import Topology  # noqa: E402
from harness.plan import SitePlan  # noqa: E402
from harness.scenario.loader import load_scenario  # noqa: E402
from harness.scenario.model import Scenario  # noqa: E402
from harness.signals import Interrupted, interruptible  # noqa: E402

__all__ = ["client_phases", "cpu_by_phase", "main", "retransmissions", "run_storm",
           "storm_scenario", "summarise_run"]

SCENARIO = REPO / "scenarios" / "boot-storm.yaml"
RESULTS_DIR = REPO / "bench" / "results"

#: a machine's states (its timeline's ``state`` events) -> the client phase they belong to
PHASE_OF = {"power-on": "firmware", "rebooting": "firmware",
            "dhcp-discover": "dhcp", "dhcp-request": "dhcp", "ipxe": "dhcp",
            "bound": "netdev", "pxe-request": "4011", "tftp": "tftp",
            "script": "http", "kernel": "http", "agent": "agent", "clock": "agent",
            "tls": "agent", "registered": "agent"}


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


def client_phases(machines: list[MachineResult]) -> dict[str, dict[str, float | None]]:
    """Per phase (DHCP, netdev, 4011, TFTP, HTTP, agent): the seconds machines spent in it,
    as p50/p95 over machines and the sum over all of them — where the boot time went as
    the clients saw it. A state lasts until the machine's next state event."""
    per: dict[str, list[float]] = {}
    for m in machines:
        spent: dict[str, float] = {}
        states = [e for e in m.timeline if e.kind == "state"]
        for here, after in itertools.pairwise(states):
            name = PHASE_OF.get(here.summary, here.summary)
            spent[name] = spent.get(name, 0.0) + after.t - here.t
        for name, seconds in spent.items():
            per.setdefault(name, []).append(seconds)
    out: dict[str, dict[str, float | None]] = {}
    for name, values in sorted(per.items(), key=lambda kv: -sum(kv[1])):
        pct = percentiles([v * 1000 for v in values])
        out[name] = {"p50": None if pct["p50"] is None else round(pct["p50"] / 1000, 3),
                     "p95": None if pct["p95"] is None else round(pct["p95"] / 1000, 3),
                     "sum": round(sum(values), 1), "machines": len(values)}
    return out


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
        "client_phases_s": client_phases(result.machines),
        "wall_s": round(result.duration, 1),
        "verdict": result.verdict,
        "error": result.error,
        "failed_expectations": [f"{e.kind} {e.subject}: {e.detail or e.description}"
                                for e in result.expectations if e.verdict == "fail"][:10],
        "time_scale": result.scenario.get("time_scale"),
        "versions": result.versions,
    }


def segment_prefix(machines: int) -> int:
    """The segment's prefix length: a /20 (2,047 leases in the pool's upper half) or wider,
    so the pool holds twice the machines (a 5,000-machine storm gets a /17)."""
    return min(20, 32 - math.ceil(math.log2(machines * 4)))


def cpu_by_phase(samples: list[tuple[float, float]], phases: list[tuple[str, float, float]]
                 ) -> dict[str, float]:
    """CPU seconds spent in each phase, from (wall clock, process CPU) samples taken
    through the run: the CPU reading at a phase's start and end is interpolated between
    the samples around it. Phases outside the samples are left out."""
    def at(t: float) -> float | None:
        for (t0, c0), (t1, c1) in itertools.pairwise(samples):
            if t0 <= t <= t1:
                return c0 if t1 == t0 else c0 + (c1 - c0) * (t - t0) / (t1 - t0)
        return None
    out: dict[str, float] = {}
    for name, start, end in phases:
        a, b = at(start), at(end)
        if a is not None and b is not None:
            out[name] = round(b - a, 2)
    return out


class _CpuSampler:
    """(time.time(), this process's CPU time) every ``interval`` s in a thread: the harness
    process holds the emulator fleet, the runner and the judge, so its CPU in the machines
    phase is what the fleet cost, a figure that moves far less with the host's load than
    the storm's wall time does."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append((time.time(), time.process_time()))
            if self._stop.wait(self.interval):
                self.samples.append((time.time(), time.process_time()))
                return

    def __enter__(self) -> _CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _one_run(per_kind: int, timeout: float | None) -> dict[str, Any]:
    """Build the resized storm, run it once (the runner tears the lab down), summarise it."""
    scenario = storm_scenario(per_kind, timeout=timeout)
    load_before = provenance.loadavg()
    t0 = time.time()
    runner = ScenarioRunner(scenario, reports_dir=REPO / "reports" / "bench",
                            scenario_file=SCENARIO)
    runner.plan = widen(runner.plan, segment_prefix(2 * per_kind))
    with _CpuSampler() as cpu, ServiceCpu() as services:
        result = runner.run()
    return {"date_utc": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t0)),
            "loadavg_before": load_before, "loadavg_after": provenance.loadavg(),
            "fleet_processes": fleet_processes(),
            **summarise_run(result, per_kind),
            "harness_cpu_s": cpu_by_phase(cpu.samples, result.phases),
            "services_cpu_s": services.seconds()}


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose all-Ready time is the median (a run that never got all Ready counts
    as slowest), so the top-level figures are one real run's, not a mix."""
    def key(r: dict[str, Any]) -> float:
        t = r.get("time_to_all_ready_s")
        return float("inf") if t is None else float(t)
    ordered = sorted(runs, key=key)
    return ordered[(len(ordered) - 1) // 2]


def run_storm(per_kind: int, results: Path | None = None, timeout: float | None = None,
              runs: int = 1, command: str | None = None) -> dict[str, Any]:
    """Run the resized storm ``runs`` times and write the JSON: the stamp, every run, the
    median run's figures at the top and each figure's spread over the runs."""
    results = results or RESULTS_DIR / f"storm-{2 * per_kind}.json"
    stamp = provenance.stamp(command or f"python bench/storm.py --per-kind {per_kind} "
                             f"--runs {runs}", runs,
                             {"dnsmasq": ["dnsmasq", "--version"],
                              "tcpdump": ["tcpdump", "--version"]})
    done = [_one_run(per_kind, timeout) for _ in range(runs)]
    median = _median_run(done)
    times = [r["time_to_all_ready_s"] for r in done]
    doc = {**stamp,
           "scenario": f"{SCENARIO.relative_to(REPO)} with count={per_kind} per group",
           "segment_prefix": segment_prefix(2 * per_kind),
           **{k: v for k, v in median.items() if k not in ("date_utc", "versions")},
           "verdicts": [r["verdict"] for r in done],
           "spread": {
               "time_to_all_ready_s": provenance.spread([t for t in times if t is not None]),
               "runs_not_all_ready": sum(1 for t in times if t is None),
               "ready_p50_s": provenance.spread([r["ready_s"]["p50"] for r in done
                                                 if r["ready_s"]["p50"] is not None], 3),
               "machines_phase_s": provenance.spread([r["phases_s"].get("machines", 0.0)
                                                      for r in done]),
               "harness_cpu_machines_phase_s": provenance.spread(
                   [r["harness_cpu_s"]["machines"] for r in done
                    if "machines" in r.get("harness_cpu_s", {})]),
               "wall_s": provenance.spread([r["wall_s"] for r in done], 1),
               "services_cpu_s": spread_by_service(done)},
           "runs": [{k: v for k, v in r.items() if k != "versions"} for r in done]}
    # the file's verdict is every run's: a median over runs one of which failed is no pass
    failed = [r for r in done if r["verdict"] != "pass"]
    if failed:
        doc["verdict"] = failed[0]["verdict"]
        doc["failed_expectations"] = failed[0]["failed_expectations"]
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def dhcp_latency(pcap: Path) -> dict[str, dict[str, Any]]:
    """From a storm's capture: per server, how long after a client's first DISCOVER (or
    REQUEST) to UDP 67 its OFFER (or ACK) went on the wire — p50/p95/max seconds and the
    count. The wire's view, free of the emulators' own scheduling: a slow server shows
    here, a slow emulator does not."""
    # here, not at the top: scapy is slow to import and only this mode needs it
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP, UDP
    from scapy.utils import PcapReader

    small = Path(tempfile.mkdtemp(prefix="storm-dhcp-")) / "dhcp.pcap"
    keep_user = ["-Z", "root"] if os.geteuid() == 0 else []  # root's tcpdump drops to its user
    subprocess.run(["tcpdump", *keep_user, "-r", str(pcap), "-w", str(small),
                    "udp port 67 or udp port 68"], capture_output=True, check=True, timeout=600)
    flows: dict[tuple[bytes, int], list[tuple[float, int, int, str, int]]] = {}
    try:
        with PcapReader(str(small)) as reader:
            for pkt in reader:
                if BOOTP not in pkt or DHCP not in pkt:
                    continue
                kind = next((o[1] for o in pkt[DHCP].options
                             if isinstance(o, tuple) and o[0] == "message-type"), 0)
                b = pkt[BOOTP]
                flows.setdefault((bytes(b.chaddr[:6]), int(b.xid)), []).append(
                    (float(pkt.time), int(b.op), int(kind), str(pkt[IP].src), int(pkt[UDP].dport)))
    finally:
        shutil.rmtree(small.parent, ignore_errors=True)
    waits: dict[str, list[float]] = {}
    for events in flows.values():
        events.sort()
        for ask, answer, name in ((1, 2, "DISCOVER->OFFER"), (3, 5, "REQUEST->ACK")):
            first = next((e[0] for e in events if e[1] == 1 and e[2] == ask and e[4] == 67), None)
            if first is None:
                continue
            seen: set[str] = set()
            for t, op, kind, src, _ in events:
                if op == 2 and kind == answer and t >= first and src not in seen:
                    seen.add(src)
                    waits.setdefault(f"{name} from {src}", []).append(t - first)
    out: dict[str, dict[str, Any]] = {}
    for key, values in sorted(waits.items()):
        pct = percentiles([v * 1000 for v in values])
        out[key] = {"n": len(values), "p50_s": round((pct["p50"] or 0) / 1000, 4),
                    "p95_s": round((pct["p95"] or 0) / 1000, 4), "max_s": round(max(values), 4)}
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the storm, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-kind", type=int, default=500, help="machines per firmware kind")
    parser.add_argument("--timeout", type=float, default=None, help="scenario timeout (s)")
    parser.add_argument("--runs", type=int, default=1, help="runs (3 for a median)")
    parser.add_argument("--dhcp-latency", type=Path, metavar="PCAP", default=None,
                        help="print the site's and proxy's DHCP answer times from a storm's "
                             "capture (reports/bench/labs/<id>/pcap/lan.pcap) and exit")
    parser.add_argument("--results", type=Path, default=None,
                        help="results file (default bench/results/storm-<machines>.json)")
    parser.add_argument("--fleet-processes", type=int, default=None, metavar="N",
                        help="deal the emulated machines to N processes (sets "
                             f"{PROCESSES_ENV}; default: the environment's, else 1)")
    args = parser.parse_args(argv)
    if args.fleet_processes is not None:
        if args.fleet_processes < 1:
            parser.error("--fleet-processes must be 1 or more")
        os.environ[PROCESSES_ENV] = str(args.fleet_processes)
    if args.dhcp_latency is not None:
        print(json.dumps(dhcp_latency(args.dhcp_latency), indent=2))
        return 0
    if os.geteuid() != 0:
        print("bench/storm.py needs root (it builds network namespaces)", file=sys.stderr)
        return 2
    try:
        argv_text = " ".join(sys.argv[1:] if argv is None else argv)
        # SIGTERM unwinds like Ctrl-C, so the runner's finally tears the lab down (without
        # this, a CI job's or `timeout`'s SIGTERM killed the storm and left its lab behind)
        with interruptible():
            doc = run_storm(args.per_kind, args.results, args.timeout, args.runs,
                            command=f"python bench/storm.py {argv_text}".strip())
    except BenchError as exc:
        print(f"storm: {exc}", file=sys.stderr)
        return 1
    except Interrupted as exc:
        print(f"storm: {signal.Signals(exc.signum).name}; stopped after tearing the lab down",
              file=sys.stderr)
        return INTERRUPTED
    print(json.dumps({k: v for k, v in doc.items() if k not in ("versions", "runs")}, indent=2))
    # the same one-line row as bench/run.py: the run's verdict first, then its figures
    [(_, subject, figure)] = summary_rows({"storm": doc})
    print(f"boot storm, {subject}: {figure}")
    return 0 if all(v == "pass" for v in doc["verdicts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
