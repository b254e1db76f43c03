#!/usr/bin/env python3
"""ProxyDHCP rate and latency: flexlab's Boot Proxy against dnsmasq in proxy mode.

A script, not a test: run it as root on an otherwise quiet host::

    .venv/bin/python bench/proxydhcp.py            # full ladder, ~3 min
    .venv/bin/python bench/proxydhcp.py --quick    # shorter steps, ~1 min

It builds one lab (segment ``lan``; hosts ``gen``, the load generator, and
``sut``, the system under test), then runs each proxy in turn in ``sut``:

* DISCOVER → OFFER with ISC ``perfdhcp -4 -i`` (it sends as a relay, from UDP
  67 with ``giaddr`` = its address, so this is the proxy's relay path), PXE
  options 60/93/94 of a UEFI x64 client, MACs from a list both proxies serve;
  ``-x t`` gives every exchange's send/receive time, from which p50/p95/p99.
* REQUEST(43.71) → ACK on UDP 4011 with bench/pxe4011.py (perfdhcp cannot).

Each path is driven up a ladder of offered rates, every step bounded by a
request count and a duration; the ladder stops once loss passes 20 % or two
steps in a row lose ≥ 1 % (a lossy step is run twice and the better run kept:
other work on a shared host causes short loss bursts). The headline figure is
the highest answered rate with < 1 % loss. The lab and every process are torn down on every path.
Writes bench/results/proxydhcp.json.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from bench.errors import BenchError  # noqa: E402
from bench.provenance import cpu_model  # noqa: E402
from bench.stats import max_sustained, parse_perfdhcp, percentiles  # noqa: E402
from harness.components.base import Component  # noqa: E402
from harness.components.bootproxy import BootProxy  # noqa: E402
from harness.components.dnsmasq_proxy import DnsmasqProxy  # noqa: E402
from harness.lab.lab import Lab  # noqa: E402
from harness.lab.process import ns_argv  # noqa: E402
from harness.lab.topology import Host, HostLink, Segment, Topology  # noqa: E402

__all__ = ["Plan", "client_macs", "machine_facts", "main", "run_benchmark",
           "write_client_files"]

RESULTS = REPO / "bench" / "results" / "proxydhcp.json"
VENDOR_CLASS = "PXEClient:Arch:00007:UNDI:003016"
LOSS_LIMIT = 0.01
# a step whose generator sent under this share of its offered rate measured the generator
GENERATOR_SHORT = 0.95


@dataclasses.dataclass(frozen=True)
class Plan:
    """Offered rates and bounds of one benchmark run (``quick`` trims both)."""

    offer_rates: tuple[int, ...] = (1000, 2000, 4000, 8000, 16000, 32000)
    # 24k and 32k: both proxies answered 16k, the old top step, so it no longer told them
    # apart; 40k-64k: then both answered 32k, the next top (a step the generator cannot
    # send at its rate ends the ladder, and the figure is marked a lower bound)
    ack_rates: tuple[int, ...] = (500, 1000, 2000, 4000, 8000, 16000, 24000, 32000, 40000,
                                  48000, 64000)
    step_seconds: int = 4
    clients: int = 1000
    refine: int = 2
    unfiltered_dnsmasq: bool = True

    @classmethod
    def quick(cls) -> Plan:
        """Fewer, shorter steps: for ``bench/run.py --quick``."""
        return cls(offer_rates=(2000, 8000, 32000), ack_rates=(1000, 4000, 16000),
                   step_seconds=2, refine=0, unfiltered_dnsmasq=False)


def _cmd(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return ((out.stdout or out.stderr).strip().splitlines() or ["unknown"])[0]


def machine_facts() -> dict[str, Any]:
    """nproc, kernel, python and tool versions, load average: what a reader needs to compare."""
    cpu = cpu_model()
    return {
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "dnsmasq": _cmd(["dnsmasq", "--version"]).split("  ")[0],
        "perfdhcp": _cmd(["perfdhcp", "-v"]),
        "flexlab": _flexlab_version(),
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
    }


def _flexlab_version() -> str:
    try:
        pkg = metadata.version("flexlab")
    except metadata.PackageNotFoundError:
        pkg = "?"
    return f"{pkg} ({_cmd(['git', '-C', str(REPO), 'rev-parse', '--short', 'HEAD'])})"


def client_macs(count: int) -> list[str]:
    """``count`` distinct client MACs (perfdhcp's default OUI 00:0c:01, then a counter)."""
    return [f"00:0c:01:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"
            for i in range(count)]


def _assignments(macs: list[str]) -> dict[str, Any]:
    return {"revision": "bench-1", "assignments": [
        {"mac": m, "cluster": "bench", "hostname": f"bench{i}", "role": "worker",
         "profile": "default"} for i, m in enumerate(macs)]}


def _topology() -> Topology:
    return Topology(
        segments=(Segment("lan", ipv6_ra=False),),
        hosts=(Host("gen", (HostLink("lan"),)), Host("sut", (HostLink("lan"),))),
    )


def _ns_run(lab: Lab, host: str, argv: list[str], timeout: float) -> str:
    """Run a command in ``host``; perfdhcp exits 3 when anything was dropped, which is data."""
    res = subprocess.run(ns_argv(lab.ns(host), argv), capture_output=True, text=True,
                         timeout=timeout, check=False)
    if res.returncode not in (0, 3):
        raise BenchError(f"{argv[0]} failed in {host} ({res.returncode}): "
                         f"{(res.stderr or res.stdout)[-1500:]}")
    return res.stdout


def perfdhcp_step(lab: Lab, server: str, macs_file: Path, rate: int, seconds: int
                  ) -> dict[str, Any]:
    """One bounded perfdhcp DISCOVER→OFFER run at ``rate``/s; the step's figures."""
    count = int(rate * seconds)
    argv = ["perfdhcp", "-4", "-i", "-r", str(rate), "-n", str(count), "-p", str(seconds),
            "-d", "1", "-M", str(macs_file),
            "-o", f"60,{VENDOR_CLASS.encode().hex()}", "-o", "93,0007", "-o", "94,010201",
            "-x", "t", server]
    report = parse_perfdhcp(_ns_run(lab, "gen", argv, timeout=seconds + 20))
    return {"offered_per_s": rate, "sent": report.sent, "received": report.received,
            "generator_short": report.sent < GENERATOR_SHORT * count,
            "answered_per_s": round(report.received / seconds, 1),
            "drop_ratio": round(report.drop_ratio, 5),
            "latency_ms": percentiles(report.latencies_ms)}


def loadgen_step(lab: Lab, server: str, macs_file: Path, item_type: int, rate: int,
                 seconds: float) -> dict[str, Any]:
    """One bounded bench/pxe4011.py run (REQUEST 43.71 → ACK on 4011) at ``rate``/s."""
    argv = [sys.executable, str(REPO / "bench" / "pxe4011.py"), "--server", server,
            "--bind", lab.address("gen", "lan"), "--macs", str(macs_file),
            "--rate", str(rate), "--count", str(int(rate * seconds)),
            "--duration", str(seconds), "--drain", "1", "--item-type", str(item_type)]
    out = json.loads(_ns_run(lab, "gen", argv, timeout=seconds + 20))
    if "error" in out:
        raise BenchError(out["error"])
    return {**out, "offered_per_s": rate,
            "generator_short": float(out["sent_per_s"]) < GENERATOR_SHORT * rate}


def probe_item_type(lab: Lab, server: str, macs_file: Path, fallback: int) -> int:
    """The 43.71 type to ask for: the first in the offer's 43.9 menu, else ``fallback``.

    Neither proxy puts a menu in its offer to a relayed UEFI DISCOVER, so the
    fallback is what each answers: 0 (PXE bootstrap) for the Boot Proxy, the
    type dnsmasq numbered the service with for dnsmasq (see :func:`dnsmasq_item_type`).
    """
    argv = [sys.executable, str(REPO / "bench" / "pxe4011.py"), "--probe", "--server", server,
            "--bind", lab.address("gen", "lan"), "--macs", str(macs_file)]
    out = json.loads(_ns_run(lab, "gen", argv, timeout=15))
    if "error" in out:
        raise BenchError(out["error"])
    types = out.get("menu_types") or [fallback]
    return int(types[0])


def dnsmasq_item_type(proxy: DnsmasqProxy, csa: str = "x86-64_EFI") -> int:
    """dnsmasq numbers ``--pxe-service`` entries with a basename 0x8000, 0x8001 … in order;
    the first non-iPXE service for ``csa`` is the one a UEFI x64 ROM asks for."""
    for index, svc in enumerate(proxy.config.services):
        if svc.csa == csa:
            return 0x8000 + index
    raise BenchError(f"the dnsmasq proxy config has no --pxe-service for {csa}")


def _show(label: str, s: dict[str, Any]) -> None:
    lat = s["latency_ms"]
    print(f"  {label:30s} offered {s['offered_per_s']:6.0f}/s  answered "
          f"{s['answered_per_s']:8.0f}/s  loss {100 * s['drop_ratio']:6.2f} %  "
          f"p50 {lat['p50']} p99 {lat['p99']} ms", flush=True)


def next_bisection(steps: list[dict[str, Any]]) -> int | None:
    """The rate halfway between the best rate under the loss limit and the lowest above it.

    ``None`` when there is no such pair or they are within 10 % of each other.
    """
    good = [s["offered_per_s"] for s in steps if s["drop_ratio"] < LOSS_LIMIT]
    if not good:
        return None
    best = max(good)
    bad = [s["offered_per_s"] for s in steps
           if s["drop_ratio"] >= LOSS_LIMIT and s["offered_per_s"] > best]
    if not bad:
        return None
    low = min(bad)
    if low - best <= best * 0.1:
        return None
    return int((best + low) // 2)


def ladder(step: Callable[[int], dict[str, Any]], rates: tuple[int, ...], label: str,
           refine: int = 0) -> list[dict[str, Any]]:
    """Run ``step`` at rising rates; stop past 20 % loss, after two lossy steps in a row or
    at a step the generator could not send at its rate (what it measured is the generator:
    it is kept but never counted as the server's); then bisect ``refine`` times between
    the last good rate and the first lossy or unsendable one."""
    steps: list[dict[str, Any]] = []
    lossy = 0
    for rate in rates:
        s = step(rate)
        if s.get("generator_short"):
            print(f"  {label:30s} offered {rate:6.0f}/s: the generator sent only "
                  f"{s.get('sent_per_s', s.get('sent'))}; the ladder stops here", flush=True)
            steps.append(s)
            break
        if s["drop_ratio"] >= LOSS_LIMIT:
            # other work on the shared host causes loss bursts of a second or two: a
            # lossy step is run once more and the better of the two kept
            again = step(rate)
            s = dict(min((s, again), key=lambda st: st["drop_ratio"]), attempts=2)
        steps.append(s)
        _show(label, s)
        lossy = lossy + 1 if s["drop_ratio"] >= LOSS_LIMIT else 0
        if s["drop_ratio"] > 0.20 or lossy >= 2:
            break
    for _ in range(refine):
        # a rate the generator could not send still bounds the search from above
        mid = next_bisection([{**st, "drop_ratio": 1.0} if st.get("generator_short") else st
                              for st in steps])
        if mid is None:
            break
        s = step(mid)
        steps.append(s)
        _show(label + " (bisect)", s)
    return sorted(steps, key=lambda st: st["offered_per_s"])


def server_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps that measured the server: those the generator sent at their rate."""
    return [s for s in steps if not s.get("generator_short")]


def ladder_limit(steps: list[dict[str, Any]]) -> str:
    """What ended a ladder: ``server`` (a lossy step above the best rate: the figure is the
    server's), ``generator`` (the generator fell short first) or ``ladder top`` (every
    step answered): in the last two the figure is only a lower bound of the server's."""
    measured = server_steps(steps)
    best = max_sustained(measured, LOSS_LIMIT)
    top = best["offered_per_s"] if best else 0
    if any(s["drop_ratio"] >= LOSS_LIMIT and s["offered_per_s"] > top for s in measured):
        return "server"
    return "generator" if any(s.get("generator_short") for s in steps) else "ladder top"


@contextlib.contextmanager
def _running(component: Component) -> Iterator[Component]:
    component.start()
    try:
        component.wait_ready()
        yield component
    finally:
        component.stop()


def _boot_proxy(lab: Lab, assignments: Path) -> Component:
    bp = BootProxy(lab, "sut", ["lan"], assignments_file=assignments, name="bench-bp")
    bp.config = dataclasses.replace(bp.config, extra_args=("--log-level", "warning"))
    return bp


def _dnsmasq(lab: Lab, macs: list[str] | None) -> DnsmasqProxy:
    """dnsmasq in proxy mode, logging off; ``macs=None`` answers every MAC (no filter)."""
    sut = lab.address("sut", "lan")
    dm = DnsmasqProxy(lab, "sut", "lan", script_url=f"http://{sut}:8080/boot/${{mac}}.ipxe",
                      served_macs=None if macs is None else tuple(macs),
                      name="bench-dnsmasq" if macs is not None else "bench-dnsmasq-all")
    dm.config = dataclasses.replace(dm.config, log_dhcp=False,
                                    extra_args=(*dm.config.extra_args, "--quiet-dhcp"))
    return dm


def _measure(lab: Lab, name: str, version: str, component: Component, macs_file: Path,
             plan: Plan, item_fallback: int) -> dict[str, Any]:
    server = lab.address("sut", "lan")
    with _running(component):
        offers = ladder(lambda r: perfdhcp_step(lab, server, macs_file, r, plan.step_seconds),
                        plan.offer_rates, f"{name} OFFER", plan.refine)
        item_type = probe_item_type(lab, server, macs_file, item_fallback)
        acks = ladder(lambda r: loadgen_step(lab, server, macs_file, item_type, r,
                                             plan.step_seconds),
                      plan.ack_rates, f"{name} ACK (43.71={item_type})", plan.refine)
    best_offer = max_sustained(server_steps(offers), LOSS_LIMIT)
    best_ack = max_sustained(server_steps(acks), LOSS_LIMIT)
    none = {"p50": None, "p95": None, "p99": None}
    return {
        "name": name,
        "version": version,
        "offers_per_s": best_offer["answered_per_s"] if best_offer else 0.0,
        "acks_per_s": best_ack["answered_per_s"] if best_ack else 0.0,
        "drop_ratio": best_offer["drop_ratio"] if best_offer else None,
        "latency_ms": best_offer["latency_ms"] if best_offer else none,
        "ack_drop_ratio": best_ack["drop_ratio"] if best_ack else None,
        "ack_latency_ms": best_ack["latency_ms"] if best_ack else none,
        "offers_limit": ladder_limit(offers),
        "acks_limit": ladder_limit(acks),
        "boot_item_type": item_type,
        "offer_steps": offers,
        "ack_steps": acks,
    }


def write_client_files(lab: Lab, macs: list[str]) -> tuple[Path, Path]:
    """Write the client MACs (perfdhcp's -M list) and the Boot Proxy's assignments for them
    into the lab's directory, readable by the proxies' unprivileged users; returns both."""
    macs_file = lab.temp_dir / "macs.txt"
    macs_file.write_text("\n".join(macs) + "\n")
    assignments = lab.temp_dir / "assignments.json"
    assignments.write_text(json.dumps(_assignments(macs)))
    for path in (lab.temp_dir, macs_file, assignments):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return macs_file, assignments


def run_benchmark(plan: Plan, results: Path = RESULTS) -> dict[str, Any]:
    """Build the lab, measure both proxies in turn, tear down, write and return the JSON."""
    facts = machine_facts()
    macs = client_macs(plan.clients)
    systems: list[dict[str, Any]] = []
    with Lab(_topology(), capture=False) as lab:
        macs_file, assignments = write_client_files(lab, macs)
        print(f"lab {lab.id}: gen {lab.address('gen', 'lan')} → sut "
              f"{lab.address('sut', 'lan')}, {len(macs)} client MACs", flush=True)
        systems.append(_measure(lab, "flexlab Boot Proxy", facts["flexlab"],
                                _boot_proxy(lab, assignments), macs_file, plan, 0))
        dnsmasq = _dnsmasq(lab, macs)
        systems.append(_measure(lab, "dnsmasq proxy", facts["dnsmasq"], dnsmasq, macs_file,
                                plan, dnsmasq_item_type(dnsmasq)))
        if plan.unfiltered_dnsmasq:
            # dnsmasq looks dhcp-host entries up one by one; without the MAC list it
            # shows what the allow-list costs (the Boot Proxy's is a dict lookup)
            open_dm = _dnsmasq(lab, None)
            systems.append(_measure(lab, "dnsmasq proxy, no MAC filter", facts["dnsmasq"],
                                    open_dm, macs_file, plan, dnsmasq_item_type(open_dm)))
    facts["loadavg_at_end"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    doc = {
        "machine": facts,
        "plan": dataclasses.asdict(plan),
        "loss_limit": LOSS_LIMIT,
        "method": {
            "offers": "perfdhcp -4 -i -r RATE -n RATE*STEP -p STEP -d 1 -M macs "
                      "-o 60,PXEClient:Arch:00007 -o 93,0007 -o 94,010201 -x t (relayed)",
            "acks": "bench/pxe4011.py: open-loop asyncio UDP from 4011, REQUEST with 43.71",
        },
        "systems": systems,
    }
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


RATIO_PEERS = ("dnsmasq proxy", "dnsmasq proxy, no MAC filter")


def run_ratios(doc: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """One run's Boot Proxy rate divided by each dnsmasq's, for offers and acks."""
    by_name = {s["name"]: s for s in doc["systems"]}
    ours = by_name.get("flexlab Boot Proxy", {})
    out: dict[str, dict[str, float | None]] = {}
    for peer in RATIO_PEERS:
        other = by_name.get(peer)
        if other is None:
            continue
        out[peer] = {key: (round(ours[key] / other[key], 3)
                           if ours.get(key) and other.get(key) else None)
                     for key in ("offers_per_s", "acks_per_s")}
    return out


def run_repeated(plan: Plan, runs: int, results: Path, command: str) -> dict[str, Any]:
    """``runs`` whole benchmarks in a row; the file keeps each, the top level is the run
    whose Boot Proxy 4011 rate is the median (what bench/report.py reads), plus the
    per-run ratios ours ÷ dnsmasq with their median, min and max."""
    docs: list[dict[str, Any]] = []
    for index in range(runs):
        print(f"== run {index + 1} of {runs}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            doc = run_benchmark(plan, Path(tmp) / "run.json")
        doc["loadavg"] = [round(x, 2) for x in os.getloadavg()]
        doc["ratios"] = run_ratios(doc)
        docs.append(doc)
    summary: dict[str, Any] = {}
    for peer in RATIO_PEERS:
        for key in ("offers_per_s", "acks_per_s"):
            each = [d["ratios"][peer][key] for d in docs
                    if peer in d["ratios"] and d["ratios"][peer][key] is not None]
            if each:
                summary[f"{key} / {peer}"] = {"per_run": each,
                                              "median": statistics.median(each),
                                              "min": min(each), "max": max(each)}
    ours = [next(s for s in d["systems"] if s["name"] == "flexlab Boot Proxy") for d in docs]
    order = sorted(range(runs), key=lambda i: ours[i]["acks_per_s"] or 0)
    top = dict(docs[order[runs // 2]])
    top.update({"command": command, "commit": top["machine"].get("flexlab"),
                "date_utc": docs[0]["machine"].get("date_utc"), "runs": docs,
                "ratio_summary": summary})
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(top, indent=2) + "\n")
    return top


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run, print where the JSON went."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter steps")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--runs", type=int, default=1,
                        help="repeat the whole benchmark; the file then holds every run, the "
                             "per-run ratios to dnsmasq and their median and spread")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/proxydhcp.py needs root (it builds network namespaces)", file=sys.stderr)
        return 2
    plan = Plan.quick() if args.quick else Plan()
    if args.runs > 1:
        doc = run_repeated(plan, args.runs, args.results,
                           " ".join(["bench/proxydhcp.py", *(argv or sys.argv[1:])]))
    else:
        doc = run_benchmark(plan, args.results)
    for s in doc["systems"]:
        print(f"{s['name']:20s} offers/s {s['offers_per_s']:8.0f}  acks/s {s['acks_per_s']:8.0f}")
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
