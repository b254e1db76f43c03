#!/usr/bin/env python3
"""CPU time per ProxyDHCP reply, in process: this checkout against an older commit.

    .venv/bin/python bench/proxydhcp_cpu.py --baseline 8215415 --rounds 7

Why CPU time: on a shared 2-core host the ladder of bench/proxydhcp.py moves with
other people's work; the CPU one reply costs (``time.thread_time``) barely does, so
a change to the hot path shows here at its true size. Each round runs both trees
in fresh interpreters, alternating, feeding 1,000 MACs' relayed DISCOVERs (port 67)
and 4011 REQUESTs (43.71) straight into ``DhcpListener.datagram_received`` with a
socket stand-in that takes every reply; no network, same packets for both trees
(built by bench/pxe4011.py). Writes bench/results/proxydhcp_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "proxydhcp_cpu.json"

__all__ = ["main", "measure"]

# Runs in a fresh interpreter with the tree under test first on sys.path, this
# checkout second (for bench.pxe4011, the request builder both trees share).
_PROBE = r'''
import json, sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from bench.pxe4011 import build_discover, build_request
from bootproxy.dhcp.responder import ResponderConfig
from bootproxy.dhcp.server import DhcpListener
from bootproxy.metrics import Registry


class Sink:
    def sendto(self, data, dest):
        return len(data)


macs = [f"52:54:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}" for i in range(1000)]
served = set(macs).__contains__
out = {}
for kind, port, packets in (
        ("offer", 67, [build_discover(m, i, "10.0.0.1") for i, m in enumerate(macs)]),
        ("ack", 4011, [build_request(m, i, f"10.0.0.{10 + i % 200}", 0)
                       for i, m in enumerate(macs)])):
    listener = DhcpListener(iface="lan", port=port, server_addr="10.0.0.3",
                            config=ResponderConfig(), served=served, registry=Registry(),
                            learn=lambda ip, mac: None)
    listener.sock = Sink()
    best = []
    for _ in range(5):
        t0 = time.thread_time()
        for _ in range(4):
            for p in packets:
                listener.datagram_received(p, ("10.0.0.50", port))
        best.append((time.thread_time() - t0) / (4 * len(packets)) * 1e6)
    out[kind] = min(best)
    if "--profile" in sys.argv:
        import cProfile, pstats
        prof = cProfile.Profile()
        prof.enable()
        for p in packets:
            listener.datagram_received(p, ("10.0.0.50", port))
        prof.disable()
        stats = pstats.Stats(prof).stats
        total = sum(v[2] for v in stats.values())
        top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:12]
        out[kind + "_profile"] = [
            [f"{fn} ({path.rsplit('/', 1)[-1]}:{line})", round(100 * v[2] / total, 1)]
            for (path, line, fn), v in top]
print(json.dumps(out))
'''


def measure(tree: Path, profile: bool = False) -> dict[str, Any]:
    """µs of CPU per OFFER and per ACK for the bootproxy package found in ``tree``; with
    ``profile`` also each function's share of own time (cProfile, one pass)."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(tree), str(REPO),
                           *(["--profile"] if profile else [])],
                          capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"probe failed in {tree}:\n{proc.stderr[-1500:]}")
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    """Parse flags, alternate the two trees ``--rounds`` times, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    load_start = os.getloadavg()
    rows: dict[str, dict[str, list[float]]] = {"baseline": {}, "current": {}}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline, "bootproxy"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        for _ in range(args.rounds):
            for name, tree in (("baseline", base), ("current", REPO)):
                for kind, us in measure(tree).items():
                    rows[name].setdefault(kind, []).append(round(us, 2))
        profiles = {name: measure(tree, profile=True)
                    for name, tree in (("baseline", base), ("current", REPO))}
    summary: dict[str, Any] = {}
    for name, kinds in rows.items():
        summary[name] = {kind: {"us_per_packet": v, "median": statistics.median(v),
                                "min": min(v), "max": max(v)} for kind, v in kinds.items()}
    doc = {
        "command": " ".join(["bench/proxydhcp_cpu.py", *(argv or sys.argv[1:])]),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "baseline": _git("rev-parse", "--short", args.baseline),
        "loadavg_at_start": [round(x, 2) for x in load_start],
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "runs": args.rounds,
        "versions": {"python": sys.version.split()[0], "kernel": os.uname().release},
        "what": "CPU µs (time.thread_time) per datagram through DhcpListener.datagram_received"
                " (parse, decide, encode, counters; a socket stand-in), best of 5 passes over "
                "1,000 MACs x 4 per round; relayed DISCOVER->OFFER and 4011 REQUEST->ACK",
        "results": summary,
        "profiles_own_time_pct": {name: {k: v for k, v in p.items() if k.endswith("_profile")}
                                  for name, p in profiles.items()},
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(doc, indent=2) + "\n")
    for name, kinds in summary.items():
        print(name, {k: v["median"] for k, v in kinds.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
