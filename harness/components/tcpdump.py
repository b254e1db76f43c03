"""One packet capture per segment, for the whole life of a lab.

tcpdump runs in the lab's switch namespace on the segment's bridge (a bridge
in promiscuous mode sees every frame it forwards), writes packet-buffered
(``-U``) so the pcap is readable while the lab runs, and is stopped with
SIGINT so it flushes and closes the file.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

from harness.components.base import Component
from harness.errors import DependencyError
from harness.lab import names
from harness.lab.lab import Lab

SNAPLEN = 2048


def capture_stats(log_text: str) -> dict[str, int]:
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


class SegmentCapture(Component):
    """tcpdump on one segment's bridge, writing ``<reports>/pcap/<segment>.pcap``."""

    def __init__(self, lab: Lab, segment: str) -> None:
        if shutil.which("tcpdump") is None:
            raise DependencyError("tcpdump not found: apt-get install tcpdump")
        self.lab = lab
        self.segment = segment
        self.name = f"capture-{segment}"
        self.pcap = lab.reports_dir / "pcap" / f"{segment}.pcap"

    def start(self) -> None:
        """Start tcpdump on the bridge."""
        self.pcap.parent.mkdir(parents=True, exist_ok=True)
        # --immediate-mode: without it frames wait in the ring buffer and a stop loses them.
        # -B 64 MiB and a 2 KiB snap length: a boot storm's TFTP/HTTP bulk (GSO TCP segments
        # up to 64 KiB on veths) made the kernel drop a quarter of the frames; every
        # header the rules read (DHCP up to 1500 B, TFTP, HTTP start lines) fits in 2 KiB.
        argv = ["tcpdump", "-i", names.bridge(self.segment), "-n", "-U", "--immediate-mode",
                "-B", "65536", "-s", str(SNAPLEN), "-Z", "root", "-w", str(self.pcap)]
        self.process = self.lab.start_process(self.name, argv, None)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Ready when tcpdump reports it is listening (the socket is open and filtering)."""
        assert self.process is not None, "start() first"
        self.process.wait_for_log(r"listening on br-", timeout)

    def stop(self) -> None:
        """SIGINT: tcpdump writes out its buffer and closes the pcap."""
        if self.process is not None:
            self.process.stop(sig=signal.SIGINT)

    def artifacts(self) -> list[Path]:
        """The pcap and tcpdump's own log."""
        return [self.pcap, *super().artifacts()]
