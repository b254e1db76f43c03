"""chrony as the site's time source: the NTP server the site DHCP offers in option 42.

The guide wants every node's clock within 1 s of the site's; a real site points
its nodes at an NTP server. ``chronyd`` serves its own clock here (``local
stratum``: the lab has no upstream) and never touches the host's clock
(``-x``): lab namespaces share the host's one clock, so a lab server that
stepped it would skew every other lab and the host itself.

:class:`FakeNtp` (fake_ntp.py) stays what site-check needs for a server that
lies by a chosen offset; this is the real daemon a whole-site scenario runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.components.base import Component
from harness.components.binaries import require_binary
from harness.lab.lab import Lab
from harness.lab.waits import UdpBound

NTP_PORT = 123


def require_chronyd() -> str:
    """Path of ``chronyd``, or a one-line DependencyError naming the package."""
    return require_binary("chronyd", "chrony")


@dataclass(frozen=True)
class ChronyConfig:
    """chrony.conf for a lab NTP server bound to one address; :meth:`argv` runs it."""

    directory: Path
    listen: str
    stratum: int = 8
    binary: str = "chronyd"

    @property
    def conf_path(self) -> Path:
        """Where chrony.conf is written."""
        return self.directory / "chrony.conf"

    def conf(self) -> str:
        """Serve the local clock to anyone on the lab's segments; no command port, no
        files outside ``directory``."""
        d = self.directory
        return (
            f"local stratum {self.stratum}\n"
            "allow all\n"
            f"bindaddress {self.listen}\n"
            f"port {NTP_PORT}\n"
            "cmdport 0\n"
            f"pidfile {d}/chronyd.pid\n"
            f"driftfile {d}/chrony.drift\n"
        )

    def write(self) -> None:
        """Write chrony.conf into ``directory``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(self.conf())

    def argv(self) -> list[str]:
        """Foreground with logs on stderr (-d), never set the system clock (-x), run as
        root in the lab host (no privilege drop to a user the host may lack)."""
        return [self.binary, "-d", "-x", "-u", "root", "-f", str(self.conf_path)]


class ChronyNtp(Component):
    """chronyd serving time on ``segment``'s address of ``host``."""

    def __init__(self, lab: Lab, host: str, segment: str, *, name: str | None = None) -> None:
        self.lab = lab
        self.host = host
        self.segment = segment
        self.name = name or f"chrony-{host}"
        self.config = ChronyConfig(directory=lab.temp_dir / self.name,
                                   listen=lab.address(host, segment), binary=require_chronyd())

    @property
    def address(self) -> str:
        """What DHCP option 42 should carry."""
        return self.config.listen

    def start(self) -> None:
        """Write the config and launch chronyd in the host's namespace."""
        self.config.write()
        self.process = self.lab.start_process(self.name, self.config.argv(), self.host)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Ready when this chronyd holds UDP 123 (it answers from then on)."""
        self.wait_for(UdpBound(NTP_PORT), timeout=timeout)
