#!/usr/bin/env python3
"""Where a command's CPU goes on this host, by kind of process: QEMU, containers, the
test workers, dnsmasq, the linters... while the command runs.

    .venv/bin/python scripts/cpu-by-kind.py --out bench/results/suite-cpu.json -- \\
        scripts/run-tests.sh

Why: the suite is CPU-bound on 2 cores (the host's busy share during a fresh-clone CI's
pytest was ~86 %), so cutting its wall time means cutting CPU somewhere; this says where.
Every ``--interval`` seconds it reads each process's CPU time (``/proc/<pid>/stat``) and
keeps the last value seen per process; a process that lives less than an interval is
missed, and the host's total (``/proc/stat``) minus the kinds is shown as "unattributed"
(short-lived commands: ``ip``, ``nsenter``, ``tc``...). Host-wide: whatever else runs on
the host is counted too, so run it on a quiet host.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.provenance import stamp  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")

# (kind, test on "command line" and "cgroup"), first match wins
KINDS: tuple[tuple[str, str], ...] = (
    ("qemu (VMs)", "qemu-system"),
    ("containers (Boot Proxy, site services)", "@docker"),
    ("mypy", "mypy"),
    ("ruff", "ruff"),
    ("dnsmasq", "dnsmasq"),
    ("tcpdump", "tcpdump"),
    ("docker engine", "dockerd"),
    ("docker engine", "containerd"),
    ("libvirtd", "libvirtd"),
    ("pytest workers", "exec(eval(sys.stdin"),  # how xdist (execnet) starts a worker
    ("pytest workers", "pytest"),
    ("control plane mock", "controlplane"),
    ("boot proxy processes", "bootproxy"),
    ("other python (fleets, relays, helpers)", "python"),
)


def kind_of(cmdline: str, cgroup: str) -> str:
    """The kind of a process from its command line and cgroup (see KINDS)."""
    for kind, needle in KINDS:
        if needle.startswith("@"):
            if needle[1:] in cgroup:
                return kind
        elif needle in cmdline:
            return kind
    return "other processes"


def host_busy_seconds() -> float:
    """CPU seconds the host has spent not idle since boot, all cores."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICKS


class Sampler:
    """Keeps the last CPU time seen of every process, and its kind."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self.proc = proc
        self.cpu: dict[tuple[int, int], float] = {}  # (pid, start time) -> CPU seconds
        self.kind: dict[tuple[int, int], str] = {}
        self.comm: dict[tuple[int, int], str] = {}  # its name when its kind was decided
        self.baseline: dict[tuple[int, int], float] = {}

    def sample(self) -> None:
        for entry in os.scandir(self.proc):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                key = (int(entry.name), int(fields[19]))  # pid, start time: pids are reused
                cpu = (int(fields[11]) + int(fields[12])) / TICKS
                # a new name is an exec (libvirtd's child becoming QEMU, nsenter becoming
                # the command): the kind is decided again, and all its CPU is the new one's
                comm = stat[stat.index("(") + 1:stat.rindex(")")]
                if self.comm.get(key) != comm:
                    self.comm[key] = comm
                    cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ")
                    cgroup = Path(entry.path, "cgroup").read_text()
                    self.kind[key] = kind_of(cmdline.decode(errors="replace"), cgroup)
            except (OSError, ValueError, IndexError):
                continue  # it ended while we looked
            self.cpu[key] = cpu

    def start(self) -> None:
        """Note what the processes alive now had already used: not the command's."""
        self.sample()
        self.baseline = dict(self.cpu)

    def by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, cpu in self.cpu.items():
            used = cpu - self.baseline.get(key, 0.0)
            if used > 0:
                out[self.kind[key]] = out.get(self.kind[key], 0.0) + used
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--what", default="", help="what was run, kept in the file")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = [c for c in args.command if c != "--"]
    if not command:
        parser.error("give the command to measure after --")
    doc = stamp("python scripts/cpu-by-kind.py " + " ".join(sys.argv[1:]), 1)
    doc["what"] = args.what
    sampler = Sampler()
    sampler.start()
    busy0, started = host_busy_seconds(), time.monotonic()
    proc = subprocess.Popen(command, cwd=REPO)
    done = threading.Event()

    def watch() -> None:
        while not done.wait(args.interval):
            sampler.sample()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    rc = proc.wait()
    done.set()
    thread.join()
    sampler.sample()
    wall = time.monotonic() - started
    busy = host_busy_seconds() - busy0
    kinds = sampler.by_kind()
    kinds["unattributed (short-lived processes)"] = max(0.0, busy - sum(kinds.values()))
    doc.update({"exit": rc, "wall_s": round(wall, 1), "host_busy_cpu_s": round(busy, 1),
                "cores": os.cpu_count(),
                "host_busy_share": round(busy / (wall * (os.cpu_count() or 1)), 3),
                "cpu_s_by_kind": {k: round(v, 1) for k, v in
                                  sorted(kinds.items(), key=lambda kv: -kv[1])}})
    args.out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"wall {wall:.0f} s, host busy {busy:.0f} CPU-s ({doc['host_busy_share']:.0%} of "
          f"{os.cpu_count()} cores), exit {rc}")
    for kind, cpu in doc["cpu_s_by_kind"].items():
        print(f"  {cpu:8.1f} CPU-s  {kind}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
