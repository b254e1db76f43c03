#!/usr/bin/env python3
"""The benchmark runner: every benchmark in turn, one table, docs/BENCHMARKS.md.

Run as root (the benchmarks build network namespaces)::

    .venv/bin/python -m bench.run            # ~30 min on a 2-core host
    .venv/bin/python bench/run.py --quick    # < 3 min: shorter steps, 100-machine storm

Benchmarks: ProxyDHCP rate/latency (bench/proxydhcp.py), TFTP/HTTP throughput
(bench/tftp_http.py, run as a child with its own flags, its output kept in
bench/results/tftp_http.json so its own files are left alone), the boot storm
(bench/storm.py: 100 + 100 then 500 + 500 emulated machines, 50 + 50 with
--quick) and one VM's power-on → Ready time (bench/vmboot.py; not with
--quick). A benchmark that fails is reported as "not measured" with its error; the others still run.

Each benchmark writes its own bench/results/*.json; docs/BENCHMARKS.md is then
regenerated from those files alone (bench/report.py), so a benchmark skipped this
time keeps its last file, shown with its own date and commit.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from bench import proxydhcp, storm  # noqa: E402
from bench.errors import BenchError  # noqa: E402
from bench.provenance import stamp  # noqa: E402
from bench.report import load_results, render, summary_rows  # noqa: E402

__all__ = ["main", "run_all", "run_tftp_http", "vm_boot"]

RESULTS = REPO / "bench" / "results"
RUNS = 3  # runs behind each ProxyDHCP and storm figure (TFTP/HTTP: 3 runs; VM boot: 5)
DOC = REPO / "docs" / "BENCHMARKS.md"


def run_tftp_http(quick: bool, results: Path = RESULTS) -> dict[str, Any]:
    """Run bench/tftp_http.py as a child into a temp dir; keep its JSON as tftp_http.json."""
    flags = (["--tftp-size-mb", "5", "--runs", "2", "--http-clients", "20"] if quick
             else ["--tftp-size-mb", "20", "--runs", "3", "--http-clients", "100"])
    with tempfile.TemporaryDirectory(prefix="flexlab-bench-") as tmp:
        argv = [sys.executable, str(REPO / "bench" / "tftp_http.py"), *flags,
                "--results", tmp, "--doc", str(Path(tmp) / "doc.md")]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            raise BenchError(f"bench/tftp_http.py exited {proc.returncode}: "
                             f"{(proc.stderr or proc.stdout)[-1000:]}")
        # the child's own command names the temp dir: a committed file names no path here
        def read(name: str) -> Any:
            return json.loads((Path(tmp) / name).read_text().replace(tmp, "<tmp>"))

        doc = {**stamp(" ".join(["bench/tftp_http.py", *flags]), runs=int(flags[3])),
               "tftp": read("tftp.json"), "http": read("http.json")}
    (results / "tftp_http.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def vm_boot(quick: bool, out: Path = RESULTS) -> dict[str, Any]:
    """The VM power-on → Ready figure (bench/vmboot.py), or why it was not measured.

    Needs the runner's VM driver (harness/builder/vm_driver.py), libvirt and
    a few minutes under TCG, so ``--quick`` leaves it out.
    """
    if quick:  # the last full run's vmboot.json stays as it was
        return {"subject": "1 VM", "reason": "left out of --quick (minutes under TCG)"}
    if importlib.util.find_spec("harness.builder.vm_driver") is None:
        return {"subject": "1 VM", "reason": "harness/builder/vm_driver.py (the runner's VM "
                "driver) does not exist, so no VM can be driven to Ready by a scenario"}
    from bench.vmboot import run_vm_boot

    return run_vm_boot(timeout=300, results=out / "vmboot.json")


def _guard(name: str, path: Path, fn: Callable[[], dict[str, Any]],
           command: str = "python -m bench.run") -> dict[str, Any]:
    """Run one benchmark that writes ``path``; a failure becomes ``{"error": ...}`` in that
    file (the document then says "not measured" and why, rather than showing the last run's
    figures as this one's) and the next benchmark still runs. Whatever provenance the
    benchmark did not write itself (command, date, commit, versions, load at start) is
    added from the moment it started."""
    before = stamp(command, runs=0)
    del before["runs"]  # only the benchmark knows how many runs its figures are made of
    t0 = time.monotonic()
    print(f"== {name}", flush=True)
    try:
        out = fn()
    except Exception as exc:  # one broken benchmark must not hide the others' figures
        traceback.print_exc()
        out = {"error": f"{type(exc).__name__}: {exc}"}
        path.write_text(json.dumps(out, indent=2) + "\n")
    out["seconds"] = round(time.monotonic() - t0, 1)
    if path.is_file():
        written = json.loads(path.read_text())
        if isinstance(written, dict):
            written = {**before, **written, "seconds": out["seconds"]}
            path.write_text(json.dumps(written, indent=2, default=str) + "\n")
    print(f"== {name}: {out['seconds']} s", flush=True)
    return out


def run_all(quick: bool, skip: set[str], out: Path = RESULTS,
            command: str = "python -m bench.run") -> dict[str, Any]:
    """Every benchmark not in ``skip``, each writing its file in ``out`` (bench/results by
    default); a benchmark in ``skip`` leaves its file there as it was. Returns what each
    benchmark returned, by name."""
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"quick": quick}
    if "proxydhcp" not in skip:
        plan = proxydhcp.Plan.quick() if quick else proxydhcp.Plan()
        path = out / "proxydhcp.json"
        # a figure is the median of RUNS whole runs, each system measured in every run
        bench_proxy = ((lambda: proxydhcp.run_benchmark(plan, path)) if quick else
                       (lambda: proxydhcp.run_repeated(plan, RUNS, path, command)))
        results["proxydhcp"] = _guard("proxydhcp", path, bench_proxy, command)
    if "tftp_http" not in skip:
        results["tftp_http"] = _guard("tftp_http", out / "tftp_http.json",
                                      lambda: run_tftp_http(quick, out), command)
    if "storm" not in skip:
        # (machines per firmware kind, scenario timeout s): the shipped storm's size, which
        # completes, then the 1,000-machine storm, each run bounded by its timeout
        sizes = [(50, 90)] if quick else [(100, 180), (500, 180)]
        results["storm"] = [
            _guard(f"storm {2 * n}", out / f"storm-{2 * n}.json",
                   lambda n=n, t=t: storm.run_storm(    # type: ignore[misc]
                       n, out / f"storm-{2 * n}.json", timeout=t,
                       runs=1 if quick else RUNS), command)
            for n, t in sizes]
    if "vm" not in skip:
        results["vm"] = _guard("vm", out / "vmboot.json", lambda: vm_boot(quick, out), command)
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse flags, run, print the table, write docs/BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="under 3 minutes")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["proxydhcp", "tftp_http", "storm", "vm"])
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for raw JSON")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/run.py needs root (the benchmarks build network namespaces)",
              file=sys.stderr)
        return 2
    command = " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])])
    t0 = time.monotonic()
    results = run_all(args.quick, set(args.skip), args.out, command)
    total = time.monotonic() - t0
    # the printed table and the document both come from the files just written, so
    # every figure printed is one that is stored
    stored = load_results(args.out)
    rows = summary_rows(stored)
    width = [max(len(r[i]) for r in rows) if rows else 10 for i in range(2)]
    print()
    for a, b, c in rows:
        print(f"{a:{width[0]}}  {b:{width[1]}}  {c}")
    args.doc.write_text(render(stored))
    print(f"\nwrote {args.doc} from {args.out}/*.json in {total:.0f} s")
    failed = [k for k in ("proxydhcp", "tftp_http")
              if isinstance(results.get(k), dict) and "error" in results[k]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
