"""Helpers for vm-tier tests: boot the node image in QEMU, and a throwaway network namespace.

Everything is started by PID and stopped by PID in finally blocks; the namespace
is named fltest<random> and deleted on every path.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
DONE_MARKER = "FLEXLAB-AGENT: done result="
CP_URL = "http://10.77.0.1:8080"

# Root and libvirtd come with the vm tier (the plugin adds needs_root and needs_libvirt).
needs_qemu = pytest.mark.needs_binary(
    "qemu-system-x86_64", how="apt-get install qemu-system-x86 (scripts/setup-host.sh)")
needs_libvirt_python = pytest.mark.needs_module("libvirt", how="pip install -e .[vm]")


def wait_for_text(path: Path, marker: str, timeout_s: float,
                  proc: subprocess.Popen[bytes] | None = None) -> str:
    """Poll ``path`` until it contains ``marker``; raise with the console tail on timeout."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if marker in text:
            return text
        if proc is not None and proc.poll() is not None:
            text = path.read_text(errors="replace") if path.exists() else ""
            if marker in text:
                return text
            raise AssertionError(f"QEMU exited {proc.returncode} before {marker!r}; "
                                 f"console tail:\n{text[-2000:]}")
        time.sleep(0.2)
    raise AssertionError(f"no {marker!r} on {path} within {timeout_s} s; "
                         f"console tail:\n{text[-2000:]}")


def boot_node_image(kernel: Path, initrd: Path, serial: Path, *, append: str,
                    disk: Path | None = None, nic_args: list[str] | None = None,
                    netns: str | None = None, extra_args: list[str] | None = None,
                    memory_mib: int = 1024, timeout_s: float = 180.0) -> str:
    """Direct-boot the node image under TCG until the agent says done; return the console."""
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-m", str(memory_mib), "-smp", "2",
            "-display", "none", "-monitor", "none", "-serial", f"file:{serial}",
            "-no-reboot", "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", f"console=ttyS0 panic=-1 {append}"]
    argv += nic_args if nic_args else ["-nic", "none"]
    argv += extra_args or []
    if disk is not None:
        argv += ["-drive", f"file={disk},if=virtio,format=qcow2"]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        return wait_for_text(serial, DONE_MARKER, timeout_s, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def agent_lines(console: str) -> list[str]:
    """The agent's marker lines, in order."""
    return [line.strip() for line in console.splitlines() if line.startswith("FLEXLAB-AGENT: ")]


@dataclass
class NodeNet:
    """A namespace with one tap, site DHCP (dnsmasq) and a stub Control Plane."""

    netns: str
    tap: str
    cp_url: str
    join_token: str
    calls: Path


@contextlib.contextmanager
def node_net(workdir: Path, move_tap: str | None = None,
             join_token: str | None = None, stub_cp: bool = True) -> Iterator[NodeNet]:
    """Create fltest<rand> with a tap at 10.77.0.1/24, dnsmasq DHCP and the stub CP.

    With ``move_tap`` an existing tap (opened by a paused libvirt domain) is moved
    in from the root namespace instead of a new one being made. With
    ``stub_cp=False`` nothing listens on 10.77.0.1:8080: the test starts its own
    Control Plane there (see :func:`ns_json`).
    """
    ns = f"fltest{secrets.token_hex(3)}"
    tap = move_tap or "fltap0"
    token = join_token or f"join-{secrets.token_hex(4)}"
    calls = workdir / "cp-calls.jsonl"
    procs: list[subprocess.Popen[bytes]] = []

    def ip(*args: str) -> None:
        subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True)

    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    try:
        ip("link", "set", "lo", "up")
        if move_tap:
            subprocess.run(["ip", "link", "set", "dev", tap, "netns", ns], check=True,
                           capture_output=True)
        else:
            ip("tuntap", "add", "dev", tap, "mode", "tap")
        ip("addr", "add", "10.77.0.1/24", "dev", tap)
        ip("link", "set", tap, "up")
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", ns, "dnsmasq", "--no-daemon", "--port=0",
             f"--interface={tap}", "--bind-interfaces", "--no-ping",
             "--dhcp-range=10.77.0.50,10.77.0.99,1h",
             f"--dhcp-leasefile={workdir / 'leases'}", f"--pid-file={workdir / 'dnsmasq.pid'}"],
            stdout=subprocess.DEVNULL, stderr=(workdir / "dnsmasq.log").open("wb")))
        if stub_cp:
            cp_log = workdir / "cp.log"
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, str(HERE / "stub_cp.py"),
                 "10.77.0.1", "8080", token, str(calls)],
                stdout=cp_log.open("wb"), stderr=subprocess.STDOUT))
            wait_for_text(cp_log, "listening", 15)
        yield NodeNet(ns, tap, CP_URL, token, calls)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


_NS_HTTP = """
import json, sys, httpx
method, url, token = sys.argv[1:4]
r = httpx.request(method, url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
print(json.dumps({"status": r.status_code, "body": r.json()}))
"""


def ns_json(netns: str, method: str, url: str, token: str) -> tuple[int, dict[str, object]]:
    """One HTTP call made from inside ``netns`` (the lab address is unreachable from here)."""
    proc = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", _NS_HTTP,
                           method, url, token], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise AssertionError(f"HTTP {method} {url} from {netns} failed: {proc.stderr[-800:]}")
    answer = json.loads(proc.stdout)
    return int(answer["status"]), dict(answer["body"])


def failed_expectations(result: Any) -> tuple[str | None, list[tuple[str, str, str]]]:
    """A run's error and its failed expectations (subject, what, detail): the message of
    a vm test's ``assert result.verdict == "pass"``."""
    return result.error, [(e.subject, e.description, e.detail) for e in result.expectations
                          if e.verdict == "fail"]
