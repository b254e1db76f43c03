"""A throw-away L2 segment of network namespaces for the rule tests.

One namespace holds a bridge; each member namespace gets an ``eth0`` on it.
Names carry the ``fltest`` prefix and a random suffix, and everything is
removed in ``close()`` (also after a failed start).
"""

from __future__ import annotations

import os
import secrets
import signal
import struct
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: the MAC the proxies under test serve, and one they must stay silent to
SERVED = "52:54:00:12:34:56"
FOREIGN = "52:54:00:65:43:21"

def sh(*argv: str) -> str:
    """Run a command, raising with its stderr when it fails."""
    res = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if res.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {res.stderr.strip()}")
    return res.stdout


@dataclass
class Segment:
    """Namespaces joined by a bridge; ``ns(name)`` is a member's namespace name."""

    members: dict[str, str]
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def bridge_ns(self) -> str:
        """Namespace holding the bridge."""
        return f"fltest{self.tag}b"

    def ns(self, member: str) -> str:
        """Namespace of ``member``."""
        return f"fltest{self.tag}{member[:4]}"

    def start(self) -> Segment:
        """Create namespaces, bridge and links; undo everything if a step fails."""
        try:
            sh("ip", "netns", "add", self.bridge_ns)
            sh("ip", "-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", self.bridge_ns, "link", "set", "br0", "up")
            for i, (member, addr) in enumerate(self.members.items()):
                ns = self.ns(member)
                sh("ip", "netns", "add", ns)
                sh("ip", "-n", ns, "link", "set", "lo", "up")
                tmp = f"fl{self.tag}{i}"
                sh(
                    "ip",
                    "link",
                    "add",
                    tmp,
                    "netns",
                    ns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    f"p{i}",
                    "netns",
                    self.bridge_ns,
                )
                sh("ip", "-n", ns, "link", "set", tmp, "name", "eth0")
                sh("ip", "-n", self.bridge_ns, "link", "set", f"p{i}", "master", "br0", "up")
                if addr:
                    sh("ip", "-n", ns, "addr", "add", addr, "dev", "eth0")
                sh("ip", "-n", ns, "link", "set", "eth0", "up")
        except Exception:
            self.close()
            raise
        return self

    def spawn(self, member: str, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside a member's namespace, output to ``log``."""
        with open(log, "wb") as out:
            p = subprocess.Popen(
                ["ip", "netns", "exec", self.ns(member), *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(p)
        return p

    def run(self, member: str, argv: Sequence[str], timeout: float = 60) -> str:
        """Run ``argv`` to completion inside a member's namespace and return stdout."""
        res = subprocess.run(
            ["ip", "netns", "exec", self.ns(member), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if res.returncode:
            raise RuntimeError(f"{argv[0]} in {member} failed: {res.stderr[-2000:]}")
        return res.stdout

    def stop(self, p: subprocess.Popen[bytes]) -> None:
        """Stop one process we started (by its own process group) and reap it."""
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)

    def close(self) -> None:
        """Stop our processes and delete our namespaces (which removes the links)."""
        for p in reversed(self.procs):
            self.stop(p)
        for ns in [self.bridge_ns, *(self.ns(m) for m in self.members)]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def start_dnsmasq(seg: Segment, member: str, tmp: Path, *extra: str,
                  ready: str = "DHCP, ") -> subprocess.Popen[bytes]:
    """dnsmasq in ``member`` on its ``eth0`` (no DNS, DHCP logged, its files in ``tmp``)
    with ``extra`` arguments; returns once its log shows ``ready``."""
    log = tmp / f"dnsmasq-{member}.log"
    argv = [
        "dnsmasq",
        "-k",
        "--conf-file=/dev/null",
        "--log-facility=-",
        "--port=0",
        "--interface=eth0",
        "--bind-interfaces",
        "--user=root",
        "--log-dhcp",
        f"--dhcp-leasefile={tmp / (member + '.leases')}",
        f"--pid-file={tmp / member}.pid",
        *extra,
    ]
    proc = seg.spawn(member, argv, log)
    wait_for_text(log, ready, proc, timeout=10)
    return proc


def start_tcpdump(seg: Segment, member: str, pcap: Path, *bpf: str) -> subprocess.Popen[bytes]:
    """tcpdump on ``member``'s ``eth0`` writing every packet to ``pcap`` at once; returns
    when it is listening (stop it with ``seg.stop``, then read ``pcap``)."""
    log = pcap.with_suffix(".tcpdump.log")
    dump = seg.spawn(member, ["tcpdump", "-i", "eth0", "-U", "--immediate-mode", "-n",
                              "-w", str(pcap), *bpf], log)
    wait_for_text(log, "listening on", dump, timeout=10)
    return dump


def wait_for_text(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll ``log`` until it contains ``text``; raise with the log tail otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace") if log.exists() else ""
        if text in content:
            return
        if proc.poll() is not None:
            raise RuntimeError(
                f"process exited ({proc.returncode}) before {text!r}:\n{content[-2000:]}"
            )
        time.sleep(0.05)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise TimeoutError(f"{text!r} not seen in {log} within {timeout} s:\n{tail}")


def wait_for_packets(pcap: Path, count: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll a capture being written until it holds ``count`` packets (tcpdump hands
    packets over asynchronously: stopping it as soon as the traffic ends can lose them)."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        seen = _pcap_packets(pcap)
        if seen >= count:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"tcpdump exited ({proc.returncode}) with {seen} of {count} packets")
        time.sleep(0.05)
    raise TimeoutError(f"{pcap} holds {seen} packets, not {count}, after {timeout} s")


def _pcap_packets(pcap: Path) -> int:
    """Packets in a classic pcap file so far (a record cut short is not counted)."""
    data = pcap.read_bytes() if pcap.exists() else b""
    if len(data) < 24:
        return 0
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    n, off = 0, 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8 : off + 12])[0]
        if off + 16 + incl > len(data):
            break
        n, off = n + 1, off + 16 + incl
    return n
