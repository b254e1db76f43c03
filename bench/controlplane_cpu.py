#!/usr/bin/env python3
"""CPU the Control Plane spends on one booting machine, per HTTP parser and event loop.

    .venv/bin/python bench/controlplane_cpu.py --machines 300 --rounds 3

Why: in a storm every machine costs the Control Plane four requests (its proxy fetches
the boot data; the node reads the time, registers, reports ready), and on a 2-core lab
host the service's CPU is taken from the fleet and the Boot Proxy; the storm's wall time
moves with the host's load, its CPU per machine barely does.

Each round starts a fresh service per configuration, in turn, creates the site through
the admin API, then walks every machine through those four requests, each on a new
connection as machines make them, one after another. The figure is the service's user
plus system CPU (/proc) across the walk, per machine, and the walk's wall time.
Writes bench/results/controlplane_cpu.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from bench import provenance  # noqa: E402
from bench.service_cpu import process_ticks  # noqa: E402
from controlplane.client import ControlPlaneClient  # noqa: E402
from harness.components.controlplane_process import ControlPlaneProcess  # noqa: E402
from harness.machines.sim.agent import NodeFacts  # noqa: E402

__all__ = ["CONFIGS", "main", "measure"]

RESULTS = REPO / "bench" / "results" / "controlplane_cpu.json"
ADMIN = "bench-admin-token"
#: name -> the service's flags
CONFIGS: dict[str, list[str]] = {
    "h11+asyncio": ["--http", "h11", "--loop", "asyncio"],
    "httptools+uvloop": ["--http", "httptools", "--loop", "uvloop"],
}
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    return process_ticks(Path(f"/proc/{pid}/stat").read_text()) / _TICK


def _call(port: int, method: str, path: str, token: str | None,
          body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One request on a connection of its own; the JSON answer (a non-2xx ends the bench)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        text = resp.read()
        if resp.status >= 300:
            raise SystemExit(f"{method} {path}: {resp.status} {text[:300]!r}")
        answer: dict[str, Any] = json.loads(text)
        return answer
    finally:
        conn.close()


def _site(url: str, machines: int) -> tuple[str, list[str]]:
    """A cluster, a profile, a proxy and ``machines`` machines; (proxy token, MACs)."""
    with ControlPlaneClient(url, ADMIN) as admin:
        admin.create_cluster("bench", machines)
        admin.upload_artifact("vmlinuz", b"kernel")
        admin.upload_artifact("initrd.img", b"initrd")
        admin.create_profile("p", "vmlinuz", "initrd.img", "flexlab.join={join_token}")
        token = admin.register_proxy("bp1", ["bench"], ["lan"])
        macs = [f"02:fe:00:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}"
                for i in range(machines)]
        for i, mac in enumerate(macs):
            admin.create_machine(mac, "bench", f"n{i}", "p")
    return token, macs


def _walk(port: int, proxy_token: str, macs: list[str]) -> None:
    """What each machine of a storm asks of the Control Plane, machine after machine."""
    facts = NodeFacts()
    for mac in macs:
        boot = _call(port, "GET", f"/api/v1/machines/{mac}/boot", proxy_token)
        _call(port, "GET", "/api/v1/time", None)
        reg = _call(port, "POST", "/api/v1/nodes/register", boot["join_token"],
                    facts.payload(mac, "efi", time.time()))
        if reg.get("state") != "Registered":
            raise SystemExit(f"{mac} was not registered: {reg}")
        _call(port, "POST", f"/api/v1/nodes/{mac}/ready", reg["node_token"], {})


def measure(config: str, machines: int) -> dict[str, float]:
    """One fresh service of ``config``: CPU ms and wall ms per machine over the walk."""
    with (tempfile.TemporaryDirectory(prefix="flexlab-cpcpu-") as tmp,
          ControlPlaneProcess(Path(tmp) / "cp.sqlite3", ADMIN,
                              extra_args=CONFIGS[config]) as cp):
        assert cp.pid is not None
        token, macs = _site(cp.url, machines)
        port = int(cp.url.rsplit(":", 1)[1])
        cpu0, t0 = _cpu_s(cp.pid), time.perf_counter()
        _walk(port, token, macs)
        cpu1, t1 = _cpu_s(cp.pid), time.perf_counter()
    return {"cpu_ms_per_machine": round(1000 * (cpu1 - cpu0) / machines, 3),
            "wall_ms_per_machine": round(1000 * (t1 - t0) / machines, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--machines", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.machines < 1 or args.rounds < 1:
        parser.error("--machines and --rounds must be at least 1")
    command = "python bench/controlplane_cpu.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    stamp = provenance.stamp(command.strip(), args.rounds, {})
    runs: list[dict[str, Any]] = []
    for round_ in range(args.rounds):
        for config in CONFIGS:
            got = measure(config, args.machines)
            runs.append({"round": round_ + 1, "config": config, **got})
            print(f"round {round_ + 1} {config:18} {got['cpu_ms_per_machine']:7.2f} CPU ms "
                  f"{got['wall_ms_per_machine']:7.2f} wall ms per machine", flush=True)
    summary: dict[str, Any] = {}
    for config in CONFIGS:
        mine = [r for r in runs if r["config"] == config]
        summary[config] = {key: provenance.spread([r[key] for r in mine], 3)
                           for key in ("cpu_ms_per_machine", "wall_ms_per_machine")}
    base = [r["cpu_ms_per_machine"] for r in runs if r["config"] == "h11+asyncio"]
    fast = [r["cpu_ms_per_machine"] for r in runs if r["config"] == "httptools+uvloop"]
    summary["cpu_ratio_per_round"] = [round(f / b, 3) for f, b in zip(fast, base, strict=True)]
    doc = {**stamp, "machines": args.machines,
           "what": "Control Plane CPU (utime+stime, /proc) per machine for its four requests "
                   "(boot as its proxy, time, register, ready), each on a new connection, "
                   "machines one after another; fresh service per configuration per round",
           "runs": runs, "summary": summary}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    for config in CONFIGS:
        s = summary[config]["cpu_ms_per_machine"]
        print(f"{config:18} {s['median']} CPU ms per machine ({s['min']}-{s['max']})")
    print(f"ratio per round: {summary['cpu_ratio_per_round']}; wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
