#!/usr/bin/env python3
"""One real VM's power-on → Ready time through the whole chain (vm tier).

A script, not a test: run it as root on a host with libvirt and the Boot
Proxy image::

    .venv/bin/python bench/vmboot.py

It loads scenarios/vm/vm-cluster.yaml and keeps only its SeaBIOS + virtio-net
machine (``bios``), then runs it with harness.builder.runner.ScenarioRunner:
libvirt/QEMU VM, site DHCP, the Boot Proxy container, the Control Plane and
the node image. The figure is that machine's power-on → Ready from the run
result. Writes bench/results/vmboot.json.
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

from harness.builder.runner import ScenarioRunner  # noqa: E402
from harness.capture.events import Capture  # noqa: E402
from harness.scenario.loader import load_scenario  # noqa: E402
from harness.scenario.model import Scenario  # noqa: E402

__all__ = ["main", "one_vm_scenario", "run_vm_boot"]

SCENARIO = REPO / "scenarios" / "vm" / "vm-cluster.yaml"
RESULTS = REPO / "bench" / "results" / "vmboot.json"


def one_vm_scenario(machine: str = "bios", timeout: float = 300, path: Path = SCENARIO
                    ) -> Scenario:
    """The VM scenario cut down to one machine (and the expectations about it)."""
    base = load_scenario(path)
    machines = [m for m in base.machines if m.name == machine]
    steps = [s.model_copy(update={"machines": [machine]}) for s in base.steps]
    expect = base.expect.model_copy(update={
        "machines": [e for e in base.expect.machines if e.name == machine]})
    doc = base.model_copy(update={"name": f"vmboot-{machine}", "machines": machines,
                                  "steps": steps, "expect": expect, "timeout": timeout})
    return Scenario.model_validate(doc.model_dump(by_alias=True))


PHASES = ("firmware", "dhcp+proxy", "tftp", "http", "kernel", "agent")


def phase_split(captures: dict[str, Capture], mac: str, ready_s: float) -> dict[str, float]:
    """Where one VM's power-on→Ready time went, read off its capture.

    firmware: power-on → its first DISCOVER. dhcp+proxy: → its first TFTP request
    (or first HTTP request when its ROM is already iPXE): address, proxy offer,
    4011. tftp: → the last TFTP packet to it (the iPXE binary, if any). http: →
    the last answer of the Boot Proxy's HTTP server (script, kernel, initrd).
    kernel: → the agent's first call to the Control Plane (the node image boots
    and does its own DHCP). agent: → its ready call. Power-on is the ready call's
    time minus the Control Plane's power-on→Ready figure.
    """
    dhcp = [e for c in captures.values() for e in c.dhcp if e.chaddr == mac and e.op == 1]
    if not dhcp:
        return {}
    ip = next((e.yiaddr for c in captures.values() for e in c.dhcp
               if e.chaddr == mac and e.op == 2 and e.yiaddr != "0.0.0.0"), None)
    tftp = sorted(e.time for c in captures.values() for e in c.tftp
                  if ip in (e.src_ip, e.dst_ip))
    proxy_http = sorted(e.time for c in captures.values() for e in c.http
                        if e.kind == "response" and e.dst_ip == ip and e.sport != 8000)
    proxy_asks = sorted(e.time for c in captures.values() for e in c.http
                        if e.kind == "request" and e.src_ip == ip and e.dport != 8000)
    cp_calls = sorted(e.time for c in captures.values() for e in c.http
                      if e.kind == "request" and e.src_ip == ip and e.dport == 8000)
    if not (proxy_http and proxy_asks and cp_calls):
        return {}
    # a NIC with an iPXE ROM fetches nothing by TFTP: that phase is then empty
    tftp_start, tftp_end = (tftp[0], tftp[-1]) if tftp else (proxy_asks[0], proxy_asks[0])
    t_ready = cp_calls[-1]
    marks = [t_ready - ready_s, min(e.time for e in dhcp), tftp_start, tftp_end,
             proxy_http[-1], cp_calls[0], t_ready]
    return {name: round(max(0.0, b - a), 2) for name, a, b in zip(PHASES, marks, marks[1:],
                                                                   strict=False)}


def run_vm_boot(timeout: float = 300, results: Path = RESULTS,
                runs: int = 5) -> dict[str, Any]:
    """Boot the one-VM scenario ``runs`` times; write the median and the phase split."""
    boots = [_one_boot(timeout) for _ in range(runs)]
    ready = sorted(b["ready_s"] for b in boots if b["ready_s"])
    doc = dict(boots[-1])
    doc["runs"] = [{k: b[k] for k in ("ready_s", "state", "verdict", "phase_split_s")}
                   for b in boots]
    doc["ready_s"] = round(statistics.median(ready), 1) if ready else None
    doc["ready_all_s"] = ready
    splits = [b["phase_split_s"] for b in boots if b["phase_split_s"]]
    doc["phase_split_s"] = ({p: round(statistics.median(s[p] for s in splits), 2)
                             for p in PHASES} if splits else {})
    doc["subject"] = f"1 VM (SeaBIOS + virtio-net, iPXE ROM, node image), median of {runs}"
    if doc["ready_s"] is None:
        doc["reason"] = f"no boot reached Ready (last: state {doc['state']}, {doc['error']})"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def _one_boot(timeout: float) -> dict[str, Any]:
    """One run of the one-VM scenario: its figures and phase split."""
    scenario = one_vm_scenario(timeout=timeout)
    t0 = time.time()
    runner = ScenarioRunner(scenario, reports_dir=REPO / "reports" / "bench",
                            scenario_file=SCENARIO)
    result = runner.run()
    machine = next(iter(result.machines), None)
    # the VM driver records the accelerator it chose by booting something (KVM or TCG)
    decision = getattr(runner.driver, "accel", None)
    accel = str(getattr(decision, "accel", decision) or "unknown")
    doc: dict[str, Any] = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t0)),
        "subject": "1 VM (SeaBIOS + virtio-net, iPXE ROM, node image)",
        "how": "scenarios/vm/vm-cluster.yaml cut to its `bios` machine, run by "
               "ScenarioRunner (libvirt/QEMU, Boot Proxy container, Control Plane); "
               "power-on->Ready from the Control Plane's node.ready event.",
        "ready_s": round(machine.ready_seconds, 1) if machine and machine.ready_seconds else None,
        "state": machine.state if machine else None,
        "reasons": machine.reasons if machine else [],
        "accel": accel,
        "wall_s": round(result.duration, 1),
        "verdict": result.verdict,
        "error": result.error,
        "phases_s": {n: round(e - s, 1) for n, s, e in result.phases},
        "phase_split_s": (phase_split(runner.captures, machine.mac, machine.ready_seconds)
                          if machine and machine.ready_seconds else {}),
        "versions": result.versions,
    }
    return doc


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the VM, print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--runs", type=int, default=5, help="boots to take the median of")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/vmboot.py needs root (libvirt, namespaces)", file=sys.stderr)
        return 2
    doc = run_vm_boot(args.timeout, args.results, args.runs)
    print(json.dumps({k: v for k, v in doc.items() if k != "versions"}, indent=2))
    return 0 if doc["ready_s"] else 1


if __name__ == "__main__":
    sys.exit(main())
