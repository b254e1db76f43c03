"""A real DHCP client (busybox udhcpc) in a lab host, for proving the site DHCP works."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass

from harness.errors import DependencyError, LabError
from harness.lab.lab import Lab

_SCRIPT = """#!/bin/busybox sh
# udhcpc calls this with the lease in its environment; print it and apply it.
case "$1" in
  bound|renew)
    echo "FLEXLAB-LEASE ip=$ip mask=$mask serverid=$serverid lease=$lease"
    /bin/busybox ip addr add "$ip/$mask" dev "$interface"
    ;;
esac
exit 0
"""

_LEASE = re.compile(r"FLEXLAB-LEASE ip=(\S+) mask=(\S+) serverid=(\S*) lease=(\S*)")


@dataclass(frozen=True)
class Lease:
    """What the client was given."""

    ip: str
    prefixlen: int
    server_id: str
    lease_seconds: int


def busybox() -> str:
    """Path of a busybox with udhcpc, or a one-line DependencyError."""
    path = shutil.which("busybox")
    if path is None:
        raise DependencyError("busybox not found: apt-get install busybox-static")
    return path


def obtain_lease(lab: Lab, host: str, segment: str, *, tries: int = 5) -> Lease:
    """Run udhcpc once on ``host``'s link to ``segment`` and return the lease it bound.

    udhcpc sends DISCOVER/REQUEST itself (retrying once a second) and exits
    when bound (``-q``) or when it gives up (``-n``), so there is no wait here
    beyond the client's own protocol timers.
    """
    iface = lab.link(host, segment).host_iface
    script = lab.temp_dir / "udhcpc.script"
    if not script.exists():
        script.write_text(_SCRIPT)
        script.chmod(0o755)
    argv = [busybox(), "udhcpc", "-i", iface, "-f", "-q", "-n", "-t", str(tries), "-T", "1",
            "-s", str(script)]
    out = lab.run(host, argv, timeout=tries * 3 + 10)
    match = _LEASE.search(out)
    if match is None:
        raise LabError(f"udhcpc on {host}/{iface} printed no lease:\n{out}")
    return Lease(match[1], int(match[2]), match[3], int(match[4] or 0))
