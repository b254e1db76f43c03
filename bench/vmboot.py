#!/usr/bin/env python3
"""One real VM's power-on → Ready time through the whole chain (vm tier).

A script, not a test: run it as root on a host with libvirt and the Boot
Proxy image::

    .venv/bin/python bench/vmboot.py

It loads scenarios/vm/vm-cluster.yaml and keeps one machine: SeaBIOS + virtio-net
(``bios``, iPXE ROM) and OVMF + virtio-net (``uefi``, OVMF's own PXE stack, then
iPXE EFI over TFTP), then runs it with harness.builder.runner.ScenarioRunner:
libvirt/QEMU VM, site DHCP, the Boot Proxy container, the Control Plane and
the node image. The figure is that machine's power-on → Ready from the run
result, and where it went, from two independent sources: the capture (DHCP,
TFTP, HTTP packets) and the serial console, followed live and timestamped
line by line while the VM boots. Writes bench/results/vmboot.json (SeaBIOS at
the top level, as before; OVMF under ``"ovmf"``), each with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
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

__all__ = ["ConsoleFollower", "console_split", "main", "one_vm_scenario",
           "run_vm_boot"]

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


# What the firmware, iPXE and the kernel print at each step, in boot order; the first
# line matching each counts. SeaBIOS boots iPXE from the NIC ROM; OVMF runs its own PXE
# (DHCP, TFTP of ipxe.efi), then iPXE. The console carries no clock, so ConsoleFollower
# stamps lines as they appear in the file.
CONSOLE_MARKS: tuple[tuple[str, str], ...] = (
    ("first_output", r"\S"),
    ("pxe", r">>Start PXE over IPv4"),            # OVMF's PXE: DHCP and ProxyDHCP
    ("nbp_downloaded", r"NBP file downloaded"),   # OVMF's PXE: ipxe.efi over TFTP
    ("ipxe", r"iPXE initialising devices"),
    ("ipxe_dhcp", r"Configuring \(net0"),
    ("script", r"\.ipxe\.\.\."),
    ("vmlinuz", r"artifacts/vmlinuz"),
    ("initrd", r"artifacts/initrd"),
    ("kernel_setup", r"Probing EDD|EFI stub"),      # the kernel's own code runs
    ("kernel_console", r"\] Linux version"),       # its console is up (log flushed)
    ("init", r"Run /init"),
    ("agent", r"FLEXLAB-AGENT: "),
    ("ready", r"FLEXLAB-AGENT: ready"),
)
_PRINTK = re.compile(r"^\[\s*(\d+\.\d+)\]")


class ConsoleFollower:
    """Follow one VM's serial log while it boots; stamp the first line of each mark.

    QEMU writes the console to a plain file without timestamps; reading the new bytes
    every ``poll_s`` gives each line its arrival time (wall clock, like the capture)
    within that poll interval.
    """

    def __init__(self, runner: ScenarioRunner, machine: str, poll_s: float = 0.05) -> None:
        self.runner = runner
        self.machine = machine
        self.poll_s = poll_s
        self.marks: dict[str, float] = {}
        self.kernel_start: float | None = None  # min over kernel lines of arrival - printk time
        self.lines: list[tuple[float, str]] = []  # every whole line with its arrival time
        self._patterns = [(name, re.compile(rx)) for name, rx in CONSOLE_MARKS]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-follower",
                                        daemon=True)

    def __enter__(self) -> ConsoleFollower:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _serial_log(self) -> Path | None:
        vms = getattr(self.runner.driver, "vms", None)
        if not vms:
            return None
        vm = next(iter(vms.values()))
        return Path(vm.spec.serial_log)

    def _run(self) -> None:
        offset, pending = 0, ""
        while not self._stop.wait(self.poll_s):
            path = self._serial_log()
            if path is None or not path.exists():
                continue
            try:
                with path.open("rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
            except OSError:
                continue
            if not chunk:
                continue
            now = time.time()
            offset += len(chunk)
            pending += chunk.decode(errors="replace")
            lines = pending.split("\n")
            pending = lines.pop()  # an unfinished line waits for its end
            self.lines += [(now, line) for line in lines]
            for line in [*lines, pending]:
                for name, rx in self._patterns:
                    if name not in self.marks and rx.search(line):
                        self.marks[name] = now
                stamp = _PRINTK.match(line.rpartition("\x1b[2J")[2] or line)
                if stamp and line in lines:
                    start = now - float(stamp.group(1))
                    if self.kernel_start is None or start < self.kernel_start:
                        self.kernel_start = start


def console_split(marks: dict[str, float], power_on: float,
                  kernel_start: float | None = None) -> dict[str, float]:
    """Console marks as seconds after power-on, in boot order (marks a boot never printed
    are left out). ``kernel_start`` (the kernel's clock zero, from printk times) goes in
    as ``kernel_clock_zero``."""
    out = {name: round(marks[name] - power_on, 2) for name, _ in CONSOLE_MARKS if name in marks}
    if kernel_start is not None:
        out["kernel_clock_zero"] = round(kernel_start - power_on, 2)
    return out


SUBJECTS = {"bios": "1 VM (SeaBIOS + virtio-net, iPXE ROM, node image)",
            "uefi": "1 VM (OVMF + virtio-net, OVMF PXE -> iPXE EFI over TFTP, node image)"}


def run_vm_boot(timeout: float = 300, results: Path = RESULTS, runs: int = 5,
                machines: tuple[str, ...] = ("bios", "uefi"),
                console_dir: Path | None = None) -> dict[str, Any]:
    """Boot each one-VM scenario ``runs`` times, interleaved; write medians and phase splits
    (and, with ``console_dir``, each boot's stamped console as ``<machine>-<n>.log``).

    SeaBIOS stays at the top level of the results file (what bench/report.py reads);
    OVMF goes under ``"ovmf"``.
    """
    boots: dict[str, list[dict[str, Any]]] = {m: [] for m in machines}
    load_start = os.getloadavg()
    for n in range(runs):
        for machine in machines:  # interleaved so load drift hits both alike
            log = console_dir / f"{machine}-{n + 1}.log" if console_dir else None
            boots[machine].append(_one_boot(machine, timeout, log))
    docs = {m: _summary(m, boots[m], runs) for m in machines}
    doc = dict(docs.get("bios") or next(iter(docs.values())))
    if "uefi" in docs and "bios" in docs:
        doc["ovmf"] = docs["uefi"]
    doc["date_utc"] = boots[machines[0]][0]["date_utc"]  # when the first boot started
    doc["command"] = f"bench/vmboot.py --runs {runs} --machine {','.join(machines)}"
    doc["commit"] = _git("rev-parse", "--short", "HEAD")
    doc["loadavg_at_start"] = [round(x, 2) for x in load_start]
    doc["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def _git(*args: str) -> str:
    out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                         check=False)
    return out.stdout.strip() or "unknown"


def _summary(machine: str, boots: list[dict[str, Any]], runs: int) -> dict[str, Any]:
    """Medians over one machine's boots, the boots themselves kept in ``runs``."""
    ready = sorted(b["ready_s"] for b in boots if b["ready_s"])
    doc = dict(boots[-1])
    doc["runs"] = [{k: b[k] for k in ("ready_s", "state", "verdict", "phase_split_s",
                                      "console_s", "loadavg")} for b in boots]
    doc["ready_s"] = round(statistics.median(ready), 1) if ready else None
    doc["ready_all_s"] = ready
    doc["ready_min_s"] = ready[0] if ready else None
    doc["ready_max_s"] = ready[-1] if ready else None
    splits = [b["phase_split_s"] for b in boots if b["phase_split_s"]]
    doc["phase_split_s"] = ({p: round(statistics.median(s[p] for s in splits), 2)
                             for p in PHASES} if splits else {})
    names = [n for n, _ in CONSOLE_MARKS] + ["kernel_clock_zero"]
    consoles = [b["console_s"] for b in boots if b["console_s"]]
    doc["console_s"] = {n: round(statistics.median(c[n] for c in consoles if n in c), 2)
                        for n in names if any(n in c for c in consoles)}
    doc["subject"] = f"{SUBJECTS[machine]}, median of {runs}"
    if doc["ready_s"] is None:
        doc["reason"] = f"no boot reached Ready (last: state {doc['state']}, {doc['error']})"
    return doc


def write_console(path: Path, lines: list[tuple[float, str]], power_on: float) -> None:
    """The serial console with each line's arrival in seconds after power-on: where a
    boot's time went, line by line (the marks keep only the first line of each step)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{t - power_on:8.2f}  {line.rstrip()}\n" for t, line in lines))


def _one_boot(machine: str, timeout: float, console_log: Path | None = None) -> dict[str, Any]:
    """One run of a one-VM scenario: its figures, capture phase split and console marks;
    with ``console_log``, the console stamped line by line is written there."""
    scenario = one_vm_scenario(machine, timeout=timeout)
    t0 = time.time()
    runner = ScenarioRunner(scenario, reports_dir=REPO / "reports" / "bench",
                            scenario_file=SCENARIO)
    with ConsoleFollower(runner, machine) as console:
        result = runner.run()
    vm = next(iter(result.machines), None)
    # the VM driver records the accelerator it chose by booting something (KVM or TCG)
    decision = getattr(runner.driver, "accel", None)
    accel = str(getattr(decision, "accel", decision) or "unknown")
    split: dict[str, float] = {}
    marks: dict[str, float] = {}
    power_on = t0  # until the run says better
    if vm and vm.ready_seconds:
        split = phase_split(runner.captures, vm.mac, vm.ready_seconds)
        ready_at = _ready_call(runner.captures, vm.mac)
        if ready_at is not None:
            power_on = ready_at - vm.ready_seconds
            marks = console_split(console.marks, power_on, console.kernel_start)
    if console_log is not None:
        write_console(console_log, console.lines, power_on)
    doc: dict[str, Any] = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t0)),
        "subject": SUBJECTS[machine],
        "how": f"scenarios/vm/vm-cluster.yaml cut to its `{machine}` machine, run by "
               "ScenarioRunner (libvirt/QEMU, Boot Proxy container, Control Plane); "
               "power-on->Ready from the Control Plane's node.ready event; phase split "
               "from the capture; console marks from the serial log followed live.",
        "ready_s": round(vm.ready_seconds, 1) if vm and vm.ready_seconds else None,
        "state": vm.state if vm else None,
        "reasons": vm.reasons if vm else [],
        "accel": accel,
        "wall_s": round(result.duration, 1),
        "verdict": result.verdict,
        "error": result.error,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "phases_s": {n: round(e - s, 1) for n, s, e in result.phases},
        "phase_split_s": split,
        "console_s": marks,
        "versions": result.versions,
    }
    return doc


def _ready_call(captures: dict[str, Capture], mac: str) -> float | None:
    """Wall time of the agent's last Control Plane call (its ready call), from the capture."""
    ip = next((e.yiaddr for c in captures.values() for e in c.dhcp
               if e.chaddr == mac and e.op == 2 and e.yiaddr != "0.0.0.0"), None)
    calls = sorted(e.time for c in captures.values() for e in c.http
                   if e.kind == "request" and e.src_ip == ip and e.dport == 8000)
    return calls[-1] if calls else None


def main(argv: list[str] | None = None) -> int:
    """Parse flags, boot the VMs, print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--runs", type=int, default=5, help="boots to take the median of")
    parser.add_argument("--machine", default="bios,uefi",
                        help="comma-separated: bios (SeaBIOS), uefi (OVMF)")
    parser.add_argument("--console-dir", type=Path, default=None,
                        help="write each boot's serial console, every line stamped with its "
                             "arrival in seconds after power-on, to DIR/<machine>-<n>.log")
    args = parser.parse_args(argv)
    machines = tuple(m for m in args.machine.split(",") if m)
    unknown = set(machines) - set(SUBJECTS)
    if unknown or not machines:
        parser.error(f"--machine takes {', '.join(SUBJECTS)}; got {args.machine!r}")
    if os.geteuid() != 0:
        print("bench/vmboot.py needs root (libvirt, namespaces)", file=sys.stderr)
        return 2
    doc = run_vm_boot(args.timeout, args.results, args.runs, machines, args.console_dir)
    print(json.dumps({k: v for k, v in doc.items() if k != "versions"}, indent=2))
    return 0 if doc["ready_s"] else 1


if __name__ == "__main__":
    sys.exit(main())
