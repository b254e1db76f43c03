"""Where a figure comes from: the stamp every bench/results/*.json carries.

A figure in docs/BENCHMARKS.md is only worth reading with its command, the date and commit
it was measured at, the versions of what was measured, how many runs it is the median of
and how far those runs spread, and how loaded this shared host was at the time. Every
benchmark writes that stamp through :func:`stamp` and its figures through :func:`spread`,
and :mod:`bench.report` shows (and flags the lack of) each part.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["REQUIRED", "commit_of", "cpu_model", "date_of", "gaps", "load_of", "loadavg", "runs_of",
           "spread", "stamp"]

REPO = Path(__file__).resolve().parent.parent

REQUIRED = ("command", "date_utc", "commit", "versions", "runs", "loadavg_at_start")
"""What :func:`stamp` writes at the top of a results file."""


def _out(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0] if lines else ""


def commit(tree: Path = REPO) -> str:
    """The short commit of the working tree (this checkout, or ``tree``), with ``+dirty``
    when it has local changes (a figure measured on uncommitted code cannot be reproduced
    from the commit alone)."""
    head = _out(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"]) or "unknown"
    dirty = _out(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no",
                  "--", "bench", "harness", "bootproxy", "controlplane", "nodeimage"])
    return f"{head}+dirty" if dirty else head


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" if unreadable): figures from two
    hosts only compare with it."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def loadavg() -> str:
    """The 1/5/15-minute load averages: how busy the shared host was."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def versions(extra: dict[str, list[str]] | None = None) -> dict[str, str]:
    """Versions of the host and of flexlab; ``extra`` maps a name to the argv printing its
    version (``{"dnsmasq": ["dnsmasq", "--version"]}``)."""
    try:
        flexlab = metadata.version("flexlab")
    except metadata.PackageNotFoundError:
        flexlab = "?"
    out = {"flexlab": flexlab, "python": platform.python_version(),
           "kernel": platform.release(), "nproc": str(os.cpu_count())}
    for name, argv in (extra or {}).items():
        out[name] = _out(argv) or "not installed"
    return out


def stamp(command: str, runs: int, extra_versions: dict[str, list[str]] | None = None
          ) -> dict[str, Any]:
    """The provenance block of a results file, taken when the measuring starts."""
    return {"command": command,
            "date_utc": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "commit": commit(), "versions": versions(extra_versions), "runs": runs,
            "loadavg_at_start": loadavg()}


def spread(values: Sequence[float], digits: int = 2) -> dict[str, Any]:
    """Median, min, max and the number of runs of one figure (Nones when nothing ran)."""
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": round(statistics.median(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits),
            "n": len(values)}


def _machine(doc: dict[str, Any]) -> dict[str, Any]:
    """The host block older results files keep date, commit and load in."""
    for key in ("machine",):
        if isinstance(doc.get(key), dict):
            return dict(doc[key])
    inner = doc.get("tftp")
    if isinstance(inner, dict) and isinstance(inner.get("machine"), dict):
        return dict(inner["machine"])
    return {}


def date_of(doc: dict[str, Any]) -> str | None:
    """When the file's figures were measured (UTC), wherever the file keeps it."""
    return doc.get("date_utc") or _machine(doc).get("date_utc")


def commit_of(doc: dict[str, Any]) -> str | None:
    """The commit measured, wherever the file keeps it."""
    m = _machine(doc)
    return doc.get("commit") or m.get("flexlab_revision") or m.get("flexlab")


def runs_of(doc: dict[str, Any]) -> int | None:
    """How many runs the file's figures are medians of (a list of runs counts its items)."""
    runs = doc.get("runs", doc.get("runs_per_scenario"))
    if runs is None and isinstance(doc.get("tftp"), dict):
        runs = doc["tftp"].get("runs")
    if isinstance(runs, list):
        return len(runs)
    return runs if isinstance(runs, int) else None


def load_of(doc: dict[str, Any]) -> str | None:
    """The host's load averages when the measuring started."""
    m = _machine(doc)
    return doc.get("loadavg_at_start") or m.get("loadavg_at_start") or m.get("loadavg")


def gaps(doc: dict[str, Any]) -> list[str]:
    """What a results file lacks of its provenance (empty when complete): its command,
    date, commit, versions or run count, fewer than three runs, or the host's load."""
    missing = []
    if not doc.get("command"):
        missing.append("command")
    if not date_of(doc):
        missing.append("date")
    if not commit_of(doc):
        missing.append("commit")
    if not doc.get("versions") and not _machine(doc):
        missing.append("versions")
    runs = runs_of(doc)
    if runs is None:
        missing.append("run count")
    elif runs < 3:
        missing.append(f"only {runs} run{'s' if runs != 1 else ''} (a median needs 3)")
    if not load_of(doc):
        missing.append("load")
    return missing
