#!/usr/bin/env python3
"""CPU time per DATA block of the emulated firmware's TFTP client: this checkout against an
older commit.

    .venv/bin/python bench/tftp_client_cpu.py --baseline cc5b4d2 --rounds 5

Why: in a 1,000-machine storm the fleet's one event loop is the busiest thread on the host
(bench/results/profile-storm-1000.json), and ``TftpClient.get`` was ~40 % of it. What a
change to that client saves shows truly as CPU per block (``time.thread_time`` of the
loop's thread), which moves little with other work on a shared host, unlike a storm's wall
time. Each round runs both trees' client in fresh interpreters, alternating, against one
Boot Proxy TFTP server of this checkout (``python -m bootproxy.tftp``, its own process, so
its CPU is not counted): ``--clients`` transfers at once, as in a storm, of a 128 KiB file
at blksize 512 and windowsize 1 (lockstep, as legacy PXE ROMs ask). Writes
bench/results/tftp_client_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from bench.provenance import loadavg, spread, stamp  # noqa: E402
from harness.lab.process import LabProcess  # noqa: E402
from harness.lab.waits import ReadyLine  # noqa: E402

RESULTS = REPO / "bench" / "results" / "tftp_client_cpu.json"
FILE_SIZE = 128 * 1024
__all__ = ["main", "measure"]

# Runs in a fresh interpreter with the tree under test first on sys.path.
_PROBE = r'''
import asyncio, json, socket, sys, time
sys.path[:0] = [sys.argv[1]]
from harness.machines.sim.tftp import TftpClient
port, clients, passes = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

async def one() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        client = TftpClient(sock, "127.0.0.1", (2.0, 2.0, 2.0), port=port)
        result = await client.get("f", blksize=512, tsize=True, windowsize=None)
        return result.blocks
    finally:
        sock.close()

async def main() -> list[float]:
    per_block = []
    for _ in range(passes):
        t0 = time.thread_time()
        blocks = sum(await asyncio.gather(*(one() for _ in range(clients))))
        per_block.append((time.thread_time() - t0) / blocks * 1e6)
    return per_block

print(json.dumps(sorted(asyncio.run(main()))))
'''


def measure(tree: Path, port: int, clients: int, passes: int = 3) -> float:
    """Least CPU µs per DATA block of ``passes`` passes, the client of ``tree``."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(tree), str(port), str(clients),
                           str(passes)], capture_output=True, text=True, timeout=600,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"probe failed in {tree}:\n{proc.stderr[-1500:]}")
    return float(json.loads(proc.stdout)[0])


def main(argv: list[str] | None = None) -> int:
    """Parse flags, alternate the two trees ``--rounds`` times, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    doc = stamp("python bench/tftp_client_cpu.py " + " ".join(argv if argv is not None
                                                               else sys.argv[1:]),
                runs=args.rounds)
    rows: dict[str, list[float]] = {"baseline": [], "current": []}
    with tempfile.TemporaryDirectory(prefix="flexlab-tftpcpu-") as tmp:
        base, root = Path(tmp) / "base", Path(tmp) / "root"
        base.mkdir()
        root.mkdir()
        (root / "f").write_bytes(os.urandom(FILE_SIZE))
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline, "harness"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        server = LabProcess("tftp-server", [sys.executable, "-m", "bootproxy.tftp", "--root",
                                            str(root), "--host", "127.0.0.1", "--port", "0"],
                            log_path=Path(tmp) / "server.log", cwd=REPO)
        with server:
            port = int(server.wait(ReadyLine("ready"), timeout=30)[0]["port"])
            for _ in range(args.rounds):
                for name, tree in (("baseline", base), ("current", REPO)):
                    rows[name].append(round(measure(tree, port, args.clients), 2))
    doc.update({
        "baseline": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short",
                                    args.baseline], capture_output=True, text=True,
                                   check=True).stdout.strip(),
        "loadavg_at_end": loadavg(),
        "what": f"CPU µs (time.thread_time of the client's loop) per DATA block; best of 3 "
                f"passes per round, each pass {args.clients} concurrent lockstep transfers "
                f"(blksize 512, tsize) of a {FILE_SIZE // 1024} KiB file from one "
                "bootproxy.tftp server of this checkout on 127.0.0.1",
        "us_per_block": {name: {"rounds": v, **spread(v)} for name, v in rows.items()},
    })
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(doc, indent=2) + "\n")
    for name, values in rows.items():
        print(f"{name:9s} {statistics.median(values):7.2f} µs/block "
              f"({min(values):.2f}-{max(values):.2f}, {len(values)} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
