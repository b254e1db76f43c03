"""CPU seconds each lab service used while a benchmark ran, read from /proc.

Why: on a 2-core host a storm's wall time is the sum of everyone's CPU (the fleet,
the Control Plane, the Boot Proxy, the site's dnsmasq, the capture) divided by two.
The harness samples only its own process; this sampler names what the others cost,
so an A/B can show which service a change made cheaper.  It samples every process
whose command line names a service, including those inside the Boot Proxy's
container (its processes are the host's, in another PID namespace).

A process is read while it lives: CPU it used after the last sample before it exited
(at most ``interval``) is not counted.  Its first reading is taken as zero when it
started after the sampler did, and as the baseline when it was already running.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.provenance import spread

__all__ = ["SERVICES", "ServiceCpu", "classify", "process_ticks", "spread_by_service"]

#: (service, a string its command line holds); the first match names the process
SERVICES: tuple[tuple[str, str], ...] = (
    ("control plane", "forkserver.server controlplane"),
    ("control plane", "-m controlplane"),
    ("boot proxy", "-m bootproxy"),
    ("site dnsmasq", "dnsmasq"),
    ("capture", "tcpdump"),
)
_TICK = os.sysconf("SC_CLK_TCK")


def classify(cmdline: bytes, services: Iterable[tuple[str, str]] = SERVICES) -> str | None:
    """The service a process with ``cmdline`` (NUL-separated, as in /proc) is, or None."""
    text = cmdline.replace(b"\0", b" ").decode(errors="replace")
    for name, needle in services:
        if needle in text:
            return name
    return None


def process_ticks(stat: str) -> int:
    """User plus system clock ticks from a /proc/PID/stat line (the command may hold
    spaces and parentheses, so fields are counted from the last ')')."""
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def spread_by_service(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each service's CPU seconds over ``runs`` (their ``services_cpu_s``) as a spread; a
    run that never saw a service counts 0 for it."""
    names = sorted({name for r in runs for name in r.get("services_cpu_s", {})})
    return {name: spread([r.get("services_cpu_s", {}).get(name, 0.0) for r in runs])
            for name in names}


@dataclass
class _Seen:
    service: str
    first: int
    last: int


@dataclass
class ServiceCpu:
    """Samples /proc in a thread between ``with`` and its end; ``seconds()`` then says
    what each service used (a service never seen is absent)."""

    interval: float = 0.5
    proc: Path = Path("/proc")
    services: tuple[tuple[str, str], ...] = SERVICES
    _seen: dict[tuple[int, str], _Seen] = field(default_factory=dict)
    _skip: set[tuple[int, str]] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self, first: bool = False) -> None:
        """Read every process once (``first``: processes running now are the baseline)."""
        for entry in os.scandir(self.proc):
            if not entry.name.isdigit():
                continue
            try:
                stat = (self.proc / entry.name / "stat").read_text()
            except OSError:
                continue  # it exited meanwhile
            # the start time tells a reused PID from the process that had it
            key = (int(entry.name), stat[stat.rindex(")") + 2:].split()[19])
            if key in self._skip:
                continue
            seen = self._seen.get(key)
            try:
                ticks = process_ticks(stat)
            except (ValueError, IndexError):
                continue
            if seen is not None:
                seen.last = max(seen.last, ticks)
                continue
            try:
                cmdline = (self.proc / entry.name / "cmdline").read_bytes()
            except OSError:
                continue
            service = classify(cmdline, self.services)
            if service is None:
                # a container's process is first seen as `runc init`, then becomes the
                # service: only a process with its final command line is skipped for good
                if cmdline and b"runc" not in cmdline:
                    self._skip.add(key)
                continue
            self._seen[key] = _Seen(service, ticks if first else 0, ticks)

    def seconds(self) -> dict[str, float]:
        """CPU seconds per service, largest first."""
        out: dict[str, float] = {}
        for seen in self._seen.values():
            out[seen.service] = out.get(seen.service, 0.0) + (seen.last - seen.first) / _TICK
        return {name: round(value, 2)
                for name, value in sorted(out.items(), key=lambda kv: -kv[1])}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()
        self.sample()

    def __enter__(self) -> ServiceCpu:
        self.sample(first=True)
        self._thread = threading.Thread(target=self._run, name="service-cpu", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
