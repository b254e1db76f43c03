"""A DHCP relay (an "ip helper") between a machines' segment and the servers' segment.

ISC dhcrelay forwards client broadcasts as unicast to each server with giaddr
set to its downstream address (and option 82 when asked), and relays the
servers' replies back. Replies from ProxyDHCP servers come back the same way;
the 4011 request and TFTP go directly (routed through the relay host), as
RELAY-2 in CONFORMANCE.md expects.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.components.base import Component
from harness.errors import ComponentError, DependencyError
from harness.lab.lab import Lab
from harness.lab.waits import UdpBound


@dataclass(frozen=True)
class RelayConfig:
    """dhcrelay's settings, rendered by :meth:`argv`."""

    downstream: str
    upstream: str
    servers: tuple[str, ...]
    pid_file: Path
    agent_options: bool = True
    binary: str = "dhcrelay"

    def argv(self) -> list[str]:
        """Foreground (-d), IPv4, explicit downstream/upstream interfaces."""
        args = [self.binary, "-4", "-d", "-pf", str(self.pid_file),
                "-id", self.downstream, "-iu", self.upstream]
        if self.agent_options:
            args += ["-a", "-m", "replace"]
        return [*args, *self.servers]


class DhcpRelay(Component):
    """dhcrelay on a forwarding lab host linked to ``downstream`` and ``upstream`` segments."""

    def __init__(self, lab: Lab, host: str, downstream: str, upstream: str,
                 servers: list[str], *, agent_options: bool = True) -> None:
        binary = shutil.which("dhcrelay") or "/usr/sbin/dhcrelay"
        if not Path(binary).exists():
            raise DependencyError("dhcrelay not found: apt-get install isc-dhcp-relay")
        if not servers:
            raise ComponentError(f"relay on {host} has no upstream servers to relay to")
        self.lab = lab
        self.host = host
        self.name = f"relay-{downstream}"
        self.config = RelayConfig(
            downstream=lab.link(host, downstream).host_iface,
            upstream=lab.link(host, upstream).host_iface,
            servers=tuple(servers),
            pid_file=lab.temp_dir / f"{self.name}.pid",
            agent_options=agent_options,
            binary=binary,
        )
        self.giaddr = lab.address(host, downstream)

    def start(self) -> None:
        """Launch dhcrelay in the relay host's namespace."""
        self.process = self.lab.start_process(self.name, self.config.argv(), self.host)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Ready when dhcrelay holds its UDP 67 socket."""
        self.wait_for(UdpBound(67), timeout=timeout)
