"""A DHCP-snooping switch: nftables bridge rules in the lab's switch namespace.

Real snooping switches drop DHCP server messages (UDP source port 67) that
arrive on untrusted ports. The rule lives in the lab's own switch namespace,
so it filters only that lab's bridge and vanishes with the lab.
"""

from __future__ import annotations

import shutil

from harness.errors import DependencyError
from harness.lab.lab import Lab


def snooping_ruleset(table: str, untrusted_ports: list[str]) -> str:
    """The nft script: drop server-to-client DHCP (UDP source port 67) entering on the
    untrusted ports. Ports are named, not the bridge: matching the bridge name needs
    ``meta ibrname``, which older kernels lack."""
    ports = ", ".join(f'"{p}"' for p in untrusted_ports)
    rule = f"    iifname {{ {ports} }} udp sport 67 counter drop\n" if untrusted_ports else ""
    return (
        f"table bridge {table} {{\n"
        "  chain forward {\n"
        "    type filter hook forward priority 0; policy accept;\n"
        f"{rule}"
        "  }\n"
        "}\n"
    )


def enable_snooping(lab: Lab, segment: str, trusted_hosts: list[str]) -> str:
    """Make ``segment`` a snooping switch trusting the ports of ``trusted_hosts``.

    Returns the nft table name (its counters tell how many replies were dropped).
    """
    if shutil.which("nft") is None:
        raise DependencyError("nft not found: apt-get install nftables")
    trusted = {lab.link(h, segment).switch_port for h in trusted_hosts}
    untrusted = sorted(info.switch_port for (_, seg), info in lab.links.items()
                       if seg == segment and info.switch_port not in trusted)
    table = f"snoop_{segment}"
    script = lab.temp_dir / f"{table}.nft"
    script.write_text(snooping_ruleset(table, untrusted))
    lab.run(None, ["nft", "-f", str(script)])
    return table


def dropped_replies(lab: Lab, segment: str) -> int:
    """How many DHCP server replies the snooping rule on ``segment`` dropped so far."""
    out = lab.run(None, ["nft", "list", "table", "bridge", f"snoop_{segment}"])
    for line in out.splitlines():
        if "sport 67" in line and "packets" in line:
            return int(line.split("packets", 1)[1].split()[0])
    return 0
