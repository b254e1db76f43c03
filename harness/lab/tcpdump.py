"""The one tcpdump runner: a lab segment's bridge, or an interface of this host.

The lab captures every segment for its whole life (:meth:`harness.lab.lab.Lab.capture`);
certify and site-check --serve capture one machine's boot on a site interface
(``netns=None``). Same flags everywhere: packet-buffered (``-U``) so the pcap is readable
while it runs, ``--immediate-mode`` (without it frames wait in the ring buffer and a stop
loses them), a 64 MiB kernel buffer and a 2 KiB snap length (a boot storm's TFTP/HTTP bulk,
GSO TCP segments up to 64 KiB on veths, made the kernel drop a quarter of the frames; every
header the rules read - DHCP up to 1500 B, TFTP, HTTP start lines - fits in 2 KiB).
Stopped with SIGINT, it flushes, closes the pcap and prints its counters.
"""

from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path

from harness.errors import DependencyError
from harness.lab.process import LabProcess
from harness.lab.waits import LogLine

SNAPLEN = 2048
BUFFER_KIB = 65536


def tcpdump_argv(iface: str, pcap: Path, bpf: str | None = None) -> list[str]:
    """tcpdump's command line for capturing ``iface`` into ``pcap`` (filtered by ``bpf``)."""
    argv = ["tcpdump", "-i", iface, "-n", "-U", "--immediate-mode", "-B", str(BUFFER_KIB),
            "-s", str(SNAPLEN), "-Z", "root", "-w", str(pcap)]
    return argv + ([bpf] if bpf else [])


def tcpdump_stats(log_text: str) -> dict[str, int]:
    """tcpdump's closing counters (captured, received by filter, dropped by kernel)."""
    stats = {}
    for key, label in (("captured", "packets captured"), ("received", "packets received"),
                       ("dropped", "packets dropped by kernel")):
        for line in log_text.splitlines():
            if line.endswith(label) or label + " " in line + " ":
                head = line.split()[0]
                if head.isdigit():
                    stats[key] = int(head)
    return stats


class PacketCapture(LabProcess):
    """tcpdump writing ``pcap``; ready once it says it is listening (its filter compiled)."""

    def __init__(self, name: str, iface: str, pcap: Path, *, bpf: str | None = None,
                 netns: str | None = None, log_path: Path | None = None) -> None:
        if shutil.which("tcpdump") is None:
            raise DependencyError("tcpdump not found: apt-get install tcpdump")
        pcap.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(name, tcpdump_argv(iface, pcap, bpf),
                         log_path or pcap.with_suffix(".tcpdump.log"), netns)
        self.iface = iface
        self.pcap = pcap
        self.bpf = bpf

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Ready when tcpdump reports it is listening on the interface."""
        self.wait(LogLine(rf"listening on {re.escape(self.iface)}\b"), timeout=timeout)

    def stop(self, timeout: float = 5.0, sig: int = signal.SIGINT) -> int | None:
        """SIGINT: tcpdump writes out its buffer and closes the pcap."""
        return super().stop(timeout=timeout, sig=sig)

    def stats(self) -> dict[str, int]:
        """Its closing counters, once stopped (empty while it runs)."""
        return tcpdump_stats(self.output())
