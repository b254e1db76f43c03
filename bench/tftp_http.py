#!/usr/bin/env python3
"""Benchmark the Boot Proxy's TFTP and HTTP boot servers against tftpd-hpa and nginx.

A script, not a test: run it as root on an otherwise quiet host::

    .venv/bin/python bench/tftp_http.py            # defaults: 20 MB TFTP file, 3 runs
    .venv/bin/python bench/tftp_http.py --runs 5 --http-clients 100

Everything runs on loopback, each server in the foreground as a child process
on its own port, stopped by PID.  The same client code (bootproxy.tftp.fetch;
a raw-socket HTTP/1.1 GET) drives every server, so differences are the servers'.
Writes bench/results/tftp.json, bench/results/http.json and
docs/BENCH-TFTP-HTTP.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.provenance import cpu_model  # noqa: E402
from bench.proxydhcp_profile import summarise as profile_summary  # noqa: E402
from bootproxy.tftp import TransferError, fetch  # noqa: E402
from harness.lab.process import LabProcess  # noqa: E402
from harness.lab.waits import ReadyLine  # noqa: E402

MB = 1_000_000


# ---------------------------------------------------------------- environment
def _cmd(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (out.stdout or out.stderr).strip()


def machine_info() -> dict[str, object]:
    """CPU, memory, kernel and the versions of everything measured."""
    cpu = cpu_model()
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "tftpd-hpa": _cmd(["dpkg-query", "-W", "-f", "${Version}", "tftpd-hpa"]),
        "nginx-light": _cmd(["dpkg-query", "-W", "-f", "${Version}", "nginx-light"]),
        "flexlab_revision": _cmd(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
    }


def free_port(kind: int) -> int:
    """A free loopback port (bound then released; good enough for a benchmark)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- processes
@contextlib.contextmanager
def child(argv: list[str], ready_json: bool, log: Path) -> Iterator[tuple[LabProcess,
                                                                            dict[str, object]]]:
    """Start a server in the foreground on this host (the harness's one process runner);
    with ``ready_json`` wait for its ``{"event": "ready"}`` line; stop it by PID on every
    path."""
    with LabProcess(log.stem, argv, log) as proc:
        ready: dict[str, object] = proc.wait(ReadyLine(), timeout=30)[0] if ready_json else {}
        yield proc, ready


async def poll(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    """Wait for a real readiness condition; raise with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout} s")
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- TFTP
def summarise(rates: list[float]) -> dict[str, float]:
    """Median, min and max of per-run rates."""
    return {"mb_per_s_median": statistics.median(rates), "mb_per_s_min": min(rates),
            "mb_per_s_max": max(rates)}


async def tftp_once(port: int, name: str, options: dict[str, str], digest: str
                    ) -> tuple[float, dict[str, str]]:
    """One fetch; returns seconds and the OACK.  Raises if the content is wrong."""
    t0 = time.perf_counter()
    result = await fetch("127.0.0.1", port, name, options, timeout=2.0, retries=5)
    seconds = time.perf_counter() - t0
    if hashlib.sha256(result.data).hexdigest() != digest:
        raise RuntimeError("TFTP transfer returned wrong content")
    return seconds, result.oack


async def tftp_many(port: int, name: str, options: dict[str, str], digest: str,
                    clients: int) -> tuple[float, dict[str, str]]:
    """``clients`` fetches of ``name`` at once; the seconds until the last one ended."""
    t0 = time.perf_counter()
    results = await asyncio.gather(*[fetch("127.0.0.1", port, name, options, timeout=2.0,
                                           retries=5) for _ in range(clients)])
    seconds = time.perf_counter() - t0
    if any(hashlib.sha256(r.data).hexdigest() != digest for r in results):
        raise RuntimeError("TFTP transfer returned wrong content")
    return seconds, results[0].oack


Case = tuple[str, dict[str, str]]
LOCKSTEP: tuple[Case, ...] = (("blksize 1468 windowsize 1", {"blksize": "1468", "windowsize": "1"}),
                              ("blksize 512 (RFC 1350 lockstep)", {}))
WINDOWED: Case = ("blksize 1468 windowsize 8", {"blksize": "1468", "windowsize": "8"})
# tftpd-hpa 5.2 has no windowsize (RFC 7440): its rows ask for blksize alone
HPA: tuple[Case, ...] = (("blksize 1468 (no windowsize)", {"blksize": "1468"}), ("blksize 512", {}))
# (ours, tftpd-hpa) row pairs whose per-run ratio is the figure issue #16 asks for
RATIOS = (("flexlab blksize 1468 windowsize 1", "tftpd-hpa blksize 1468 (no windowsize)"),
          ("flexlab blksize 512 (RFC 1350 lockstep)", "tftpd-hpa blksize 512"),
          ("flexlab blksize 1468 windowsize 8", "tftpd-hpa blksize 1468 (no windowsize)"))


def ours_argv(root: Path, tree: Path | None, extra: tuple[str, ...] = ()
              ) -> tuple[list[str], dict[str, str] | None]:
    """The Boot Proxy's TFTP server alone; ``tree``: run another checkout's copy of it."""
    argv = [sys.executable, "-m", "bootproxy.tftp", "--root", str(root), "--host",
            "127.0.0.1", "--port", "0", *extra]
    return argv, ({"PYTHONPATH": str(tree)} if tree else None)


# Our servers side by side: (row prefix, flags).  "flexlab-pump" is today's server with
# every transfer on the one epoll thread (--dedicated-threads 0), what every transfer but
# one gets when several run, so the own-thread gain is measured in the same runs.
# "flexlab-sleep" is today's server with --ack-poll-us 0: a lone transfer's thread sleeps
# in recv for every ACK instead of polling first, the gain of the poll in the same runs.
OURS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("flexlab", ()), ("flexlab-sleep", ("--ack-poll-us", "0")),
    ("flexlab-pump", ("--dedicated-threads", "0")))
# Many clients at once (``--concurrent N``): N lockstep fetches of a file the size of
# ipxe.efi, from today's server (a thread for one transfer, the pump for the rest), all
# on the pump, all on threads ("flexlab-threads", started for this case only) and
# tftpd-hpa (a process each): what the default of one thread rests on.
CONCURRENT_FILE = ("ipxe-sized.bin", 1_000_000)
CONCURRENT_OPTS = {"blksize": "1468", "windowsize": "1"}


async def bench_tftp(root: Path, name: str, digest: str, size: int, runs: int,
                     logs: Path, baseline: Path | None = None, profile: int = 0,
                     pump: bool = True, concurrent: int = 0
                     ) -> tuple[list[dict[str, object]], list[dict[str, object]],
                                dict[str, object]]:
    """All servers up at once; cases interleaved run by run so load drift hits all alike.

    Returns the rows, the per-run ratios ours/tftpd-hpa, and (``profile`` > 0) py-spy
    summaries of our server(s) during ``profile`` extra lockstep fetches per case.
    ``baseline`` is another checkout whose server runs as "flexlab-baseline" rows.
    A ``pump`` server runs as "flexlab-pump" rows (see ``OURS``) unless ``pump`` is False.
    ``concurrent`` > 1 adds, per run, that many clients at once (see ``CONCURRENT_FILE``).
    """

    async def probe_ok(port: int) -> bool:
        try:
            await fetch("127.0.0.1", port, "probe", timeout=0.2, retries=0)
        except TransferError:
            return False
        return True

    with contextlib.ExitStack() as stack:
        servers: list[tuple[str, int, int]] = []  # (prefix, port, pid)
        meters: dict[str, Callable[[], float]] = {}
        started: list[tuple[str, Path | None, tuple[str, ...]]] = [
            (prefix, None, extra) for prefix, extra in OURS if pump or not extra]
        if baseline is not None:
            started.append(("flexlab-baseline", baseline, ()))
        if concurrent > 1:
            started.append(("flexlab-threads", None, ("--dedicated-threads", str(concurrent))))
            small = os.urandom(CONCURRENT_FILE[1])
            (root / CONCURRENT_FILE[0]).write_bytes(small)
            small_digest = hashlib.sha256(small).hexdigest()
        for prefix, tree, extra in started:
            argv, env = ours_argv(root, tree, extra)
            # `python -m` puts the working directory first on sys.path: run in the tree
            proc = stack.enter_context(LabProcess(f"{prefix}-tftp", argv,
                                                  logs / f"{prefix}-tftp.log", env=env,
                                                  cwd=tree or REPO))
            ready = proc.wait(ReadyLine(), timeout=30)[0]
            servers.append((prefix, int(ready["port"]), proc.pid))
            meters[prefix] = stack.enter_context(cpu_meter(proc.pid, prefix))
        many = f"{concurrent} clients at once, blksize 1468 windowsize 1"
        cases: list[tuple[str, int, dict[str, str], int]] = [
            (f"{prefix} {label}", port, opts, 1)
            for prefix, port, _ in servers if prefix != "flexlab-threads"
            for label, opts in (*LOCKSTEP, WINDOWED)]
        cpu_of = {f"{prefix} {label}": meters[prefix] for prefix, _, _ in servers
                  for label, _ in (*LOCKSTEP, WINDOWED)}
        if concurrent > 1:
            for prefix, port, _ in servers:
                if prefix in ("flexlab", "flexlab-pump", "flexlab-threads"):
                    cases.append((f"{prefix} {many}", port, CONCURRENT_OPTS, concurrent))
                    cpu_of[f"{prefix} {many}"] = meters[prefix]
        if shutil.which("in.tftpd") is None:
            print("in.tftpd not installed (apt-get install tftpd-hpa): skipping tftpd-hpa rows")
        else:
            hpa_port = free_port(socket.SOCK_DGRAM)
            hpa, _ = stack.enter_context(child(
                ["in.tftpd", "--listen", "--foreground", "--address", f"127.0.0.1:{hpa_port}",
                 "--secure", str(root)], False, logs / "tftpd-hpa.log"))
            await poll(lambda: probe_ok(hpa_port), "in.tftpd")
            cases += [(f"tftpd-hpa {label}", hpa_port, opts, 1) for label, opts in HPA]
            hpa_cpu = stack.enter_context(cpu_meter(hpa.pid, "tftpd-hpa"))
            cpu_of.update({f"tftpd-hpa {label}": hpa_cpu for label, _ in HPA})
            if concurrent > 1:
                hpa_many = f"tftpd-hpa {concurrent} clients at once, blksize 1468"
                cases.append((hpa_many, hpa_port, {"blksize": "1468"}, concurrent))
                cpu_of[hpa_many] = hpa_cpu
        times: dict[str, list[float]] = {label: [] for label, _, _, _ in cases}
        cpu: dict[str, list[float]] = {label: [] for label, _, _, _ in cases}
        sizes = {label: size if clients == 1 else clients * CONCURRENT_FILE[1]
                 for label, _, _, clients in cases}
        oacks: dict[str, dict[str, str]] = {}
        for _ in range(runs):
            for label, case_port, opts, clients in cases:
                before = cpu_of[label]()
                if clients == 1:
                    seconds, oacks[label] = await tftp_once(case_port, name, opts, digest)
                else:
                    seconds, oacks[label] = await tftp_many(
                        case_port, CONCURRENT_FILE[0], opts, small_digest, clients)
                times[label].append(seconds)
                await asyncio.sleep(0.2)  # tftpd-hpa's transfer child has taken the last ACK
                cpu[label].append(cpu_of[label]() - before)
        profiles: dict[str, object] = {}
        for prefix, port, pid in servers if profile else []:
            for label, opts in LOCKSTEP:
                with spy(pid) as out:
                    for _ in range(profile):
                        await tftp_once(port, name, opts, digest)
                profiles[f"{prefix} {label}"] = {"fetches": profile, **out}
    rows: list[dict[str, object]] = [
        {"server": label, "options": opts, "oack": oacks[label], "seconds": times[label],
         **({} if clients == 1 else {"clients": clients, "bytes_each": CONCURRENT_FILE[1]}),
         **summarise([sizes[label] / t / MB for t in times[label]]),
         "server_cpu_s": cpu[label],
         "server_cpu_ms_per_mb_median": statistics.median(c * 1000 / (sizes[label] / MB)
                                                           for c in cpu[label])}
        for label, _, opts, clients in cases]
    ratios: list[dict[str, object]] = []
    for prefix in [p for p, _, _ in servers]:
        for ours, peer in RATIOS:
            ours = ours.replace("flexlab", prefix, 1)
            if ours in times and peer in times:
                each = [p / o for o, p in zip(times[ours], times[peer], strict=True)]
                cpu_ours, cpu_peer = sum(cpu[ours]), sum(cpu[peer])
                ratios.append({"ours": ours, "peer": peer, "per_run": each,
                               "median": statistics.median(each), "min": min(each),
                               "max": max(each),
                               "server_cpu_ours_over_peer": (round(cpu_ours / cpu_peer, 2)
                                                             if cpu_peer else None)})
    return rows, ratios, profiles


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


@contextlib.contextmanager
def cpu_meter(pid: int, name: str) -> Iterator[Callable[[], float]]:
    """CPU seconds used by ``pid`` and every process it forks from now on (tftpd-hpa
    forks one per transfer and lets the kernel reap it, so /proc's cutime misses them):
    a cgroup-v1 cpuacct group of its own, removed on exit. Unlike throughput, CPU per MB
    barely moves with the load of other work on the host. Yields a reader; without
    cpuacct the reader returns NaN."""
    group = CPUACCT / f"flexlab-bench-{name}-{os.getpid()}"
    try:
        group.mkdir()
        (group / "cgroup.procs").write_text(str(pid))
    except OSError:
        yield lambda: float("nan")
        return
    try:
        yield lambda: int((group / "cpuacct.usage").read_text()) / 1e9
    finally:
        with contextlib.suppress(OSError):
            for left in (group / "cgroup.procs").read_text().split():
                (CPUACCT / "cgroup.procs").write_text(left)
        with contextlib.suppress(OSError):
            group.rmdir()


@contextlib.contextmanager
def spy(pid: int) -> Iterator[dict[str, object]]:
    """Sample ``pid`` with py-spy (idle included) while the block runs; fill in its summary."""
    exe = Path(sys.executable).parent / "py-spy"
    found = shutil.which("py-spy") or (str(exe) if exe.exists() else None)
    if found is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install -e '.[test]'")
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.txt"
        rec = subprocess.Popen([found, "record", "--pid", str(pid), "--rate", "250", "--idle",
                                "--format", "raw", "-o", str(raw), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)  # py-spy attaches before the first fetch
            yield out
        finally:
            rec.send_signal(signal.SIGINT)
            _, err = rec.communicate(timeout=60)
        if not raw.exists():
            raise RuntimeError(f"py-spy wrote nothing: {err[-500:]}")
        out.update(profile_summary(raw.read_text()))


# ---------------------------------------------------------------- HTTP
async def http_get(port: int, path: str, expect: int) -> float:
    """One GET with a plain socket, body discarded; returns seconds taken."""
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: bench\r\n"
                                      "Connection: close\r\n\r\n".encode())
        buf = bytearray(256 * 1024)
        view = memoryview(buf)
        head = b""
        header_done = False
        body = 0
        while True:
            n = await loop.sock_recv_into(sock, view)
            if n == 0:
                break
            if header_done:
                body += n
                continue
            head += bytes(view[:n])
            if b"\r\n\r\n" in head:
                head, _, rest = head.partition(b"\r\n\r\n")
                header_done = True
                body = len(rest)
    finally:
        sock.close()
    if not head.startswith(b"HTTP/1.1 200") or body != expect:
        raise RuntimeError(f"bad HTTP reply: {head[:60]!r}, {body} of {expect} bytes")
    return time.perf_counter() - t0


async def http_round(port: int, path: str, size: int, clients: int) -> tuple[float, list[float]]:
    """``clients`` concurrent GETs of one file: wall seconds and per-client seconds."""
    t0 = time.perf_counter()
    each = await asyncio.gather(*[http_get(port, path, size) for _ in range(clients)])
    return time.perf_counter() - t0, list(each)


NGINX_CONF = """daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ application/octet-stream efi kpxe bin; }}
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        root {root};
    }}
}}
"""


async def bench_http(root: Path, files: list[tuple[str, int]], clients: int, runs: int,
                     logs: Path) -> list[dict[str, object]]:
    """Both servers up at once; rounds interleaved run by run."""

    async def http_ok(port: int) -> bool:
        try:
            await http_get(port, "/probe", 5)
        except (OSError, RuntimeError):
            return False
        return True

    ours = [sys.executable, "-m", "bootproxy.httpboot", "--root", str(root), "--host",
            "127.0.0.1", "--port", "0", "--cache-dir", str(logs / "cache")]
    with contextlib.ExitStack() as stack:
        _, ready = stack.enter_context(child(ours, True, logs / "flexlab-http.log"))
        servers = [("flexlab httpboot (1 process, asyncio)", int(ready["port"]))]  # type: ignore[call-overload]
        if shutil.which("nginx") is None:
            print("nginx not installed (apt-get install nginx-light): skipping nginx rows")
        else:
            port = free_port(socket.SOCK_STREAM)
            conf = logs / "nginx.conf"
            conf.write_text(NGINX_CONF.format(tmp=logs, port=port, root=root))
            stack.enter_context(child(["nginx", "-p", str(logs), "-e",
                                       str(logs / "nginx-error.log"), "-c", str(conf)],
                                      False, logs / "nginx.log"))
            await poll(lambda: http_ok(port), "nginx")
            servers.append(("nginx (1 worker, sendfile)", port))
        walls: dict[tuple[str, str], list[float]] = {}
        latencies: dict[tuple[str, str], list[float]] = {}
        for _ in range(runs):
            for name, size in files:
                for label, port in servers:
                    wall, each = await http_round(port, f"/{name}", size, clients)
                    walls.setdefault((label, name), []).append(wall)
                    latencies.setdefault((label, name), []).extend(each)
    results: list[dict[str, object]] = []
    for label, _ in servers:
        for name, size in files:
            lat = sorted(latencies[(label, name)])
            results.append({
                "server": label, "file": name, "clients": clients, "file_bytes": size,
                "wall_seconds": walls[(label, name)],
                **summarise([clients * size / w / MB for w in walls[(label, name)]]),
                "per_client_p50_s": lat[len(lat) // 2],
                "per_client_p95_s": lat[max(0, int(len(lat) * 0.95) - 1)]})
    return results


# ---------------------------------------------------------------- image build
def time_image_build() -> dict[str, object]:
    """Time `images/build.sh --no-cache` (the base image stays cached by its hash)."""
    t0 = time.perf_counter()
    proc = subprocess.run([str(REPO / "images" / "build.sh"), "--no-cache"],
                          capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"images/build.sh failed:\n{proc.stderr[-2000:]}")
    size = _cmd(["docker", "image", "inspect", "-f", "{{.Size}}", "flexlab/bootproxy:latest"])
    return {"command": "images/build.sh --no-cache", "seconds": round(seconds, 1),
            "image_bytes": int(size) if size.isdigit() else None}


# ---------------------------------------------------------------- report
def render_ratios(ratios: list[dict[str, object]], profiles: dict[str, object]) -> list[str]:
    """Per-run ratios ours/tftpd-hpa (the same run, the same client) and the py-spy tables."""
    lines: list[str] = []
    if ratios:
        lines += ["", "### Ours ÷ tftpd-hpa, run by run", "",
                  "Each run fetches from every server back to back; the ratio is taken within "
                  "the run, so a load swing between runs cancels out.", "",
                  "| ours | tftpd-hpa row | median x | min | max | per run | server CPU "
                  "ours / theirs |",
                  "| --- | --- | ---: | ---: | ---: | --- | ---: |"]
        for q in ratios:
            each = ", ".join(f"{x:.2f}" for x in q["per_run"])  # type: ignore[attr-defined]
            lines.append(f"| {q['ours']} | {q['peer']} | {q['median']:.2f} | {q['min']:.2f} | "
                         f"{q['max']:.2f} | {each} | {q.get('server_cpu_ours_over_peer')} |")
    for label, prof in profiles.items():
        assert isinstance(prof, dict)
        lines += ["", f"### py-spy: {label} ({prof['fetches']} fetches, {prof['samples']} "
                  "samples, idle included)", "",
                  "| function (file) | own % | | function (file) | inclusive % |",
                  "| --- | ---: | --- | --- | ---: |"]
        own = [(n, p) for n, p in prof["own_pct"]][:10]
        inc = [(n, p) for n, p in prof["inclusive_pct"]
               if not n.startswith(("<module>", "_run_code", "_run_module", "run (", "main ("))]
        for (on, op), (inn, ip) in zip(own, inc[:10], strict=False):
            lines.append(f"| {on} | {op} | | {inn} | {ip} |")
    return lines


def render(machine: dict[str, object], tftp: list[dict[str, object]],
           http: list[dict[str, object]], tftp_size: int, argv: list[str],
           image: dict[str, object] | None = None,
           ratios: list[dict[str, object]] | None = None,
           profiles: dict[str, object] | None = None) -> str:
    """The Markdown report: machine line, one table per benchmark, how to read them."""
    lines = [
        "# Benchmarks: Boot Proxy TFTP and HTTP boot servers",
        "",
        "Written by `bench/tftp_http.py` (raw data: `bench/results/tftp.json`, "
        "`bench/results/http.json`, `bench/results/image.json`). Everything on loopback; "
        "each server a foreground child process on its own port, stopped by PID; one client "
        "implementation for all servers.",
        "",
        f"Command: `{' '.join(argv)}`",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()),
        "",
        f"## TFTP: one {tftp_size / MB:.0f} MB file, one client, loopback",
        "",
        "| server / options | OACK | median MB/s | min | max | server CPU ms per MB |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    single = [r for r in tftp if "clients" not in r]
    many = [r for r in tftp if "clients" in r]
    for r in single:
        oack = ", ".join(f"{k}={v}" for k, v in r["oack"].items()) or "(none)"  # type: ignore[attr-defined]
        lines.append(f"| {r['server']} | {oack} | {r['mb_per_s_median']:.1f} | "
                     f"{r['mb_per_s_min']:.1f} | {r['mb_per_s_max']:.1f} | "
                     f"{r.get('server_cpu_ms_per_mb_median', float('nan')):.0f} |")
    if many:
        lines += ["", f"## TFTP: {many[0]['clients']} clients at once, "
                  f"{int(many[0]['bytes_each']) / MB:.0f} MB each (the size of ipxe.efi), "  # type: ignore[call-overload]
                  "lockstep, loopback", "",
                  "flexlab: a thread for one transfer, the pump for the others (the default); "
                  "flexlab-pump: every transfer on the pump; flexlab-threads: "
                  "a thread each for all; tftpd-hpa: a process each. MB/s is all the "
                  "clients' bytes over the time until the last ended.", "",
                  "| server | median MB/s | min | max | server CPU ms per MB |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {r['server']} | {r['mb_per_s_median']:.1f} | {r['mb_per_s_min']:.1f} | "
                  f"{r['mb_per_s_max']:.1f} | "
                  f"{r.get('server_cpu_ms_per_mb_median', float('nan')):.0f} |" for r in many]
    lines += render_ratios(ratios or [], profiles or {})
    lines += [
        "",
        "## HTTP: concurrent clients, each GETs the whole file, loopback",
        "",
        "| server | file | clients | median aggregate MB/s | min | max | p50 per client s | "
        "p95 per client s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in http:
        lines.append(f"| {r['server']} | {r['file']} ({int(r['file_bytes']) / MB:.1f} MB) | "  # type: ignore[call-overload]
                     f"{r['clients']} | {r['mb_per_s_median']:.0f} | {r['mb_per_s_min']:.0f} | "
                     f"{r['mb_per_s_max']:.0f} | {r['per_client_p50_s']:.3f} | "
                     f"{r['per_client_p95_s']:.3f} |")
    if image is not None:
        size = image["image_bytes"]
        lines += [
            "",
            "## Boot Proxy image build",
            "",
            "| command | seconds | image size |",
            "| --- | ---: | ---: |",
            f"| `{image['command']}` (base cached; apt over Docker's NAT) | {image['seconds']} | "
            + (f"{int(size) / MB:.0f} MB |" if isinstance(size, int) else "? |"),
        ]
    lines += [
        "",
        "## Reading the numbers",
        "",
        "- The host has 2 cores shared with other work (load average at start and end in the "
        "machine line); client and server compete for them, so absolute figures are low and "
        "noisy. The servers run side by side and the cases are interleaved run by run, so "
        "load drift hits every row alike; compare rows of one report, not reports.",
        "- TFTP throughput on loopback is bound by per-packet cost: windowsize 8 cuts the ACK "
        "round trips 8-fold. tftpd-hpa 5.2 does not implement windowsize (RFC 7440), so its "
        "best case is lockstep.",
        "- Lockstep (windowsize 1) is one round trip per block: client, wake-up, server, "
        "wake-up. On a loaded host the wake-ups (waiting for a core) dominate, which is why "
        "single runs swing several-fold; the per-run ratios and the CPU column are the "
        "figures to compare.",
        "- server CPU ms per MB: CPU time of the server process and every process it forks "
        "(tftpd-hpa forks one per transfer), from a cpuacct cgroup per server, divided by "
        "the MB delivered; it moves little with the host's load.",
        "- flexlab-baseline rows (with `--baseline REV`): the TFTP server of that revision, "
        "from `git archive`, in the same runs as the current one.",
        "- flexlab-pump rows: the current server with `--dedicated-threads 0`, every "
        "transfer on the one epoll thread, as all but one are when several run at once; "
        "in the one-client flexlab rows the transfer has a thread of its own, which polls "
        "its socket for up to 200 µs (`--ack-poll-us`) before it sleeps in recv.",
        "- flexlab-sleep rows: the current server with `--ack-poll-us 0`, the transfer's "
        "thread sleeping in recv for every ACK as tftpd-hpa's process does. The difference "
        "from the flexlab rows is the wake-up a poll saves; its price is the server CPU "
        "column (the thread polls while the client works).",
        "- py-spy tables sample every thread, idle included: the event loop's thread waits "
        "in EpollSelector.select, the pump in TransferPump._run (its epoll wait), a "
        "transfer's own thread in TransferThreads._move (its recvfrom); the rest is the work.",
        "- HTTP: both servers use sendfile; nginx runs one worker to match the single asyncio "
        "process. The client is Python asyncio and may be the limit at high rates.",
        "- What matters for booting: TFTP carries only the iPXE binary (undionly.kpxe 70 KB, "
        "ipxe.efi ~1 MB), a fraction of a second even in lockstep; kernel and initrd go over "
        "HTTP, where per-request overhead (small files) is where the Python server trails "
        "nginx most, and large files approach it.",
        "",
    ]
    return "\n".join(lines)


async def amain(args: argparse.Namespace) -> None:
    """Make the test files, run the benchmarks asked for, write JSON and the Markdown report."""
    machine = machine_info()
    argv = ["bench/tftp_http.py", *sys.argv[1:]]
    work = Path(tempfile.mkdtemp(prefix="flexlab-bench-"))
    tftp: list[dict[str, object]] = []
    ratios: list[dict[str, object]] = []
    profiles: dict[str, object] = {}
    http: list[dict[str, object]] = []
    try:
        root = work / "root"
        logs = work / "logs"
        root.mkdir()
        logs.mkdir()
        for p in (work, root):
            p.chmod(0o755)  # tftpd-hpa and nginx workers drop to unprivileged users
        size = int(args.tftp_size_mb * MB)
        data = os.urandom(size)
        (root / "big.bin").write_bytes(data)
        (root / "probe").write_bytes(b"probe")
        http_files = [("big.bin", size)]
        ipxe = Path("/usr/lib/ipxe/ipxe.efi")
        if ipxe.is_file():
            shutil.copy(ipxe, root / "ipxe.efi")
            http_files.insert(0, ("ipxe.efi", ipxe.stat().st_size))
        for f in root.iterdir():
            f.chmod(0o644)
        digest = hashlib.sha256(data).hexdigest()
        baseline_tree = None
        if args.baseline:
            baseline_tree = work / "baseline"
            baseline_tree.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline,
                                      "bootproxy"], capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(baseline_tree)], input=archive, check=True)
        if args.only in ("all", "tftp"):
            print(f"TFTP: {size / MB:.0f} MB file, {args.runs} runs per case ...", flush=True)
            tftp, ratios, profiles = await bench_tftp(
                root, "big.bin", digest, size, args.runs, logs, baseline_tree,
                args.profile, concurrent=args.concurrent)
            for r in tftp:
                print(f"  {r['server']:55s} {r['mb_per_s_median']:7.1f} MB/s", flush=True)
            for q in ratios:
                print(f"  {q['ours']:55s} {q['median']:.2f}x {q['peer']} "
                      f"(min {q['min']:.2f}, max {q['max']:.2f})", flush=True)
        if args.only in ("all", "http"):
            print(f"HTTP: {args.http_clients} concurrent clients, {args.runs} runs ...",
                  flush=True)
            http = await bench_http(root, http_files, args.http_clients, args.runs, logs)
            for r in http:
                print(f"  {r['server']:40s} {r['file']:10s} {r['mb_per_s_median']:8.0f} MB/s",
                      flush=True)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    machine["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    common = {"command": " ".join(argv), "date_utc": machine["date_utc"],
              "commit": machine["flexlab_revision"], "machine": machine, "runs": args.runs}
    if tftp:
        (out / "tftp.json").write_text(json.dumps(
            {**common, "file_bytes": size, "results": tftp, "ratios_vs_tftpd_hpa": ratios,
             **({"baseline": _cmd(["git", "-C", str(REPO), "rev-parse", "--short",
                                   args.baseline])} if args.baseline else {}),
             **({"profiles": profiles} if profiles else {})}, indent=2) + "\n")
    if http:
        (out / "http.json").write_text(json.dumps({**common, "clients": args.http_clients,
                                                   "results": http}, indent=2) + "\n")
    image = None
    if args.image_build:
        print("image: images/build.sh --no-cache ...", flush=True)
        image = time_image_build()
        (out / "image.json").write_text(json.dumps({**common, **image}, indent=2) + "\n")
    if args.doc:
        # a run of one benchmark keeps the other's table from its results file
        if not http and (out / "http.json").is_file():
            http = json.loads((out / "http.json").read_text())["results"]
        doc = render(machine, tftp, http, size, argv, image, ratios, profiles)
        Path(args.doc).write_text(doc)
        print(doc)


def main() -> None:
    """Parse flags and run the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tftp-size-mb", type=float, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--http-clients", type=int, default=100)
    parser.add_argument("--only", choices=["all", "tftp", "http"], default="all")
    parser.add_argument("--baseline", metavar="REV",
                        help="a git revision: its bootproxy TFTP server (git archive) runs "
                             "beside ours as flexlab-baseline rows")
    parser.add_argument("--concurrent", type=int, default=16, metavar="N",
                        help="also N lockstep clients at once per run (1 MB each); 0: not")
    parser.add_argument("--profile", type=int, default=0, metavar="FETCHES",
                        help="after the timed runs, sample our server(s) with py-spy during "
                             "FETCHES lockstep fetches per case")
    parser.add_argument("--results", default=str(REPO / "bench" / "results"))
    parser.add_argument("--doc", default=str(REPO / "docs" / "BENCH-TFTP-HTTP.md"),
                        help="Markdown report to write; empty: none")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and logs")
    parser.add_argument("--image-build", action="store_true",
                        help="also time images/build.sh --no-cache (needs docker)")
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
