#!/usr/bin/env python3
"""Where the Boot Proxy's ProxyDHCP time goes under load: py-spy on the live process.

Run as root (it builds the same lab as bench/proxydhcp.py)::

    .venv/bin/python bench/proxydhcp_profile.py --rate 8000 --seconds 4

Starts the Boot Proxy in ``sut`` serving 1,000 MACs, drives it with perfdhcp
(DISCOVER→OFFER, relayed) or bench/pxe4011.py (``--path ack``) at one fixed rate,
samples it with ``py-spy record --format raw`` meanwhile, and prints the share of
samples per function, inclusive and own time, idle (the selector wait) included
so the busy share reads off directly. ``--raw`` keeps py-spy's collapsed stacks
(flamegraph input). py-spy comes with the ``test`` extra.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from bench.errors import BenchError  # noqa: E402
from bench.proxydhcp import (  # noqa: E402
    _boot_proxy,
    _topology,
    client_macs,
    loadgen_step,
    perfdhcp_step,
    write_client_files,
)
from harness.lab.lab import Lab  # noqa: E402

__all__ = ["main", "profile", "summarise"]


def _frame_name(frame: str) -> str:
    """``func (path/file.py:12)`` → ``func (file.py)``: lines differ per sample, files do not."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else name


def summarise(raw: str, top: int = 15) -> dict[str, Any]:
    """Per-function sample shares from py-spy's raw (collapsed) output."""
    total = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame_name(f) for f in stack.split(";")]
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n
    if total == 0:
        raise BenchError("py-spy recorded no samples; is the proxy running and py-spy allowed "
                         "to ptrace it (run as root)?")

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in c.most_common(top)]

    return {"samples": total, "inclusive_pct": share(inclusive), "own_pct": share(own)}


def profile(rate: int, seconds: int, path: str, raw_out: Path | None) -> dict[str, Any]:
    """Run one load step against the Boot Proxy while py-spy samples it."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise BenchError("py-spy is not installed: .venv/bin/pip install -e '.[test]'")
    macs = client_macs(1000)
    with Lab(_topology(), capture=False) as lab, tempfile.TemporaryDirectory() as tmp:
        macs_file, assignments = write_client_files(lab, macs)
        proxy = _boot_proxy(lab, assignments)
        proxy.start()
        try:
            proxy.wait_ready()
            assert proxy.process is not None
            raw_path = Path(tmp) / "spy.txt"
            recorder = subprocess.Popen(
                [spy, "record", "--pid", str(proxy.process.pid), "--duration", str(seconds),
                 "--rate", "250", "--idle", "--format", "raw", "-o", str(raw_path),
                 "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            server = lab.address("sut", "lan")
            try:
                if path == "ack":
                    step = loadgen_step(lab, server, macs_file, 0, rate, seconds)
                else:
                    step = perfdhcp_step(lab, server, macs_file, rate, seconds)
            finally:
                _, err = recorder.communicate(timeout=seconds + 30)
            if not raw_path.exists():
                raise BenchError(f"py-spy wrote nothing: {err[-500:]}")
            raw = raw_path.read_text()
            if raw_out is not None:
                raw_out.write_text(raw)
        finally:
            proxy.stop()
    return {"rate": rate, "path": path, "step": step, **summarise(raw)}


def main(argv: list[str] | None = None) -> int:
    """Parse flags, profile, print the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=8000, help="offered requests per second")
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--path", choices=["offer", "ack"], default="offer")
    parser.add_argument("--raw", type=Path, help="also keep py-spy's collapsed stacks here")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/proxydhcp_profile.py needs root (it builds network namespaces)",
              file=sys.stderr)
        return 2
    out = profile(args.rate, args.seconds, args.path, args.raw)
    step = out["step"]
    print(f"{out['path']} at {out['rate']}/s: answered {step['answered_per_s']}/s, loss "
          f"{100 * step['drop_ratio']:.2f} %, latency {step['latency_ms']}; "
          f"{out['samples']} samples")
    for title, key in (("inclusive", "inclusive_pct"), ("own", "own_pct")):
        print(f"-- {title} % of samples")
        for name, pct in out[key]:
            print(f"  {pct:5.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
