#!/usr/bin/env python3
"""CPU one netlink handle in a lab namespace costs: pyroute2's NetNS against ns_route.

    .venv/bin/python bench/netns_handle.py --rounds 5 --handles 20

Why: a lab opens a dozen such handles while it is built, from the process that builds
it (a pytest worker, a scenario runner) holding a few hundred MB. pyroute2's ``NetNS``
forks that process for each handle; ``harness.lab.netlink.ns_route`` opens the socket
from a thread that entered the namespace instead. Each round, in a fresh interpreter
holding ``--ballast-mb`` of touched memory (a worker's size), opens ``--handles``
handles each way in turn, each reading the namespace's links once, and takes the
process's and its children's CPU (getrusage) per handle. Needs root (it makes one
namespace, removed on every path). Writes bench/results/netns-handle.json.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from bench import provenance  # noqa: E402

__all__ = ["main", "measure"]

RESULTS = REPO / "bench" / "results" / "netns-handle.json"

_PROBE = r'''
import json, resource, sys
from pyroute2 import NetNS
from harness.lab.netlink import ns_route
ns, handles, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ballast = [bytearray(1 << 20) for _ in range(mb)]
for chunk in ballast:
    chunk[::4096] = b"\1" * len(chunk[::4096])
def cpu():
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
out = {}
for name, opener in (("pyroute2 NetNS", NetNS), ("ns_route", ns_route)):
    before = cpu()
    for _ in range(handles):
        with opener(ns) as ipr:
            assert [l.get("IFLA_IFNAME") for l in ipr.get_links()] == ["lo"]
    out[name] = (cpu() - before) / handles * 1000
print(json.dumps(out))
'''


def measure(ns: str, handles: int, ballast_mb: int) -> dict[str, float]:
    """ms of CPU per handle, each way, in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, ns, str(handles), str(ballast_mb)],
                          cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"probe failed:\n{proc.stderr[-1500:]}")
    doc: dict[str, float] = json.loads(proc.stdout)
    return doc


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run the rounds, write the JSON and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--handles", type=int, default=20)
    parser.add_argument("--ballast-mb", type=int, default=300)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    doc: dict[str, Any] = provenance.stamp(
        " ".join(["bench/netns_handle.py", *(argv if argv is not None else sys.argv[1:])]),
        args.rounds)
    ns = f"flbench-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    rows: dict[str, list[float]] = {}
    try:
        for _ in range(args.rounds):
            for name, ms in measure(ns, args.handles, args.ballast_mb).items():
                rows.setdefault(name, []).append(round(ms, 2))
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    doc.update({
        "what": f"CPU ms (getrusage, self + children) per netlink handle opened in a lab "
                f"namespace and used for one link dump, from a process holding "
                f"{args.ballast_mb} MB, {args.handles} handles per way per round",
        "ms_per_handle": {name: {"per_round": v, **provenance.spread(v)}
                          for name, v in rows.items()},
    })
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(doc, indent=2) + "\n")
    for name, v in rows.items():
        print(f"{name}: {provenance.spread(v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
