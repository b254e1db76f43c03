"""tcpdump on the certification interface, limited to one machine's boot traffic.

The pcap goes into a bundle that leaves the site, so it carries only what certifies the
machine: frames to or from its MAC, DHCP packets whose ``chaddr`` is its MAC (the site
server's and the Boot Proxy's broadcast replies, relayed copies), and this host's own
boot services (TFTP transfers, the HTTP boot server, the Control Plane) for the case
where the machine is behind a router. 2 KiB per frame holds every header the rules read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path
from types import TracebackType

from harness.certify.errors import CertifyError
from harness.wait import wait_until

SNAPLEN = 2048
DHCP_PORTS = "(udp port 67 or udp port 68 or udp port 4011)"


def chaddr_filter(mac: str) -> str:
    """BPF matching a BOOTP packet whose client hardware address is ``mac``.

    chaddr starts 28 bytes into the BOOTP payload, i.e. at byte 36 of the UDP header.
    """
    raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise CertifyError(f"{mac!r} is not a MAC address (write it as 52:54:00:12:34:56)")
    return f"(udp[36:4] = 0x{raw[:4].hex()} and udp[40:2] = 0x{raw[4:].hex()})"


def boot_filter(macs: list[str], own_ip: str, tcp_ports: list[int]) -> str:
    """The capture filter for ``macs`` booting from this host at ``own_ip``."""
    parts = []
    for mac in macs:
        parts.append(f"ether host {mac.lower()}")
        parts.append(f"({DHCP_PORTS} and {chaddr_filter(mac)})")
    services = " or ".join(f"tcp port {p}" for p in tcp_ports)
    # TFTP answers from an ephemeral port: any UDP of ours except DHCP/DNS/NTP/mDNS
    udp = "(udp and not port 53 and not port 123 and not port 5353 and not " \
          f"{DHCP_PORTS})"
    parts.append(f"(host {own_ip} and ({services + ' or ' if services else ''}{udp}))")
    return " or ".join(parts)


class BootCapture:
    """One tcpdump process writing ``pcap``; a context manager that always stops it (by PID)."""

    def __init__(self, iface: str, pcap: Path, bpf: str) -> None:
        if shutil.which("tcpdump") is None:
            raise CertifyError("tcpdump not found: apt-get install tcpdump")
        self.iface = iface
        self.pcap = pcap
        self.bpf = bpf
        self.log = pcap.with_suffix(".tcpdump.log")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> BootCapture:
        """Start tcpdump and wait until it says it is listening (its filter compiled)."""
        self.pcap.parent.mkdir(parents=True, exist_ok=True)
        argv = ["tcpdump", "-i", self.iface, "-n", "-U", "--immediate-mode", "-s",
                str(SNAPLEN), "-Z", "root", "-w", str(self.pcap), self.bpf]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        try:
            wait_until(self._listening, timeout=timeout, what=f"tcpdump on {self.iface}",
                       evidence=lambda: self.log.read_text(errors="replace"))
        except BaseException:
            self.stop()
            raise
        return self

    def _listening(self) -> bool:
        text = self.log.read_text(errors="replace")
        if self.proc is not None and self.proc.poll() is not None:
            raise CertifyError(f"tcpdump on {self.iface} exited: {text.strip()[-400:]}")
        return "listening on" in text

    def stop(self, timeout: float = 5.0) -> None:
        """SIGINT so tcpdump flushes and closes the pcap; SIGKILL if it hangs."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def __enter__(self) -> BootCapture:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

