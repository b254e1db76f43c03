"""A DHCP-snooping switch: nftables bridge rules in the lab's switch namespace.

Real snooping switches drop DHCP server messages (UDP source port 67) that
arrive on untrusted ports. The rules live in the lab's own switch namespace,
so they filter only that lab's bridge and vanish with the lab. Each untrusted port
has its own rule and counter, so a run can say which port dropped how many replies
(:func:`port_drops`), the way a real switch's snooping statistics do per interface.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

from harness.errors import DependencyError, LabError
from harness.lab.lab import Lab


def snooping_ruleset(table: str, untrusted_ports: list[str]) -> str:
    """The nft script: drop server-to-client DHCP (UDP source port 67) entering on each
    untrusted port. The drop is in the bridge's forward hook, after the bridge device
    (where the lab's tcpdump listens) has seen the frame, so the capture still shows what
    was dropped; a counting rule per port in prerouting sees each frame once as it
    enters (forward would count a broadcast once per port it would leave by), so its
    counter is the number of replies dropped. Ports are named, not the bridge: matching
    the bridge name needs ``meta ibrname``, which older kernels lack."""
    count = "".join(f'    iifname "{p}" udp sport 67 counter\n' for p in untrusted_ports)
    drop = "".join(f'    iifname "{p}" udp sport 67 drop\n' for p in untrusted_ports)
    return (
        f"table bridge {table} {{\n"
        "  chain ingress {\n"
        "    type filter hook prerouting priority 0; policy accept;\n"
        f"{count}"
        "  }\n"
        "  chain forward {\n"
        "    type filter hook forward priority 0; policy accept;\n"
        f"{drop}"
        "  }\n"
        "}\n"
    )


def table_name(segment: str) -> str:
    """The nft table of ``segment``'s snooping switch."""
    return f"snoop_{segment}"


@dataclass(frozen=True)
class SnoopingSwitch:
    """A lab segment made a snooping switch: read its per-port drops while the lab runs."""

    lab: Lab
    segment: str
    table: str

    def port_drops(self) -> dict[str, int]:
        """Per lab host on the segment, the DHCP server replies its port dropped so far."""
        return port_drops(self.lab, self.segment)


def enable_snooping(lab: Lab, segment: str, trusted_hosts: list[str]) -> SnoopingSwitch:
    """Make ``segment`` a snooping switch trusting the ports of ``trusted_hosts``."""
    if shutil.which("nft") is None:
        raise DependencyError("nft not found: apt-get install nftables")
    trusted = {lab.link(h, segment).switch_port for h in trusted_hosts}
    untrusted = sorted(info.switch_port for (_, seg), info in lab.links.items()
                       if seg == segment and info.switch_port not in trusted)
    table = table_name(segment)
    script = lab.temp_dir / f"{table}.nft"
    script.write_text(snooping_ruleset(table, untrusted))
    lab.run(None, ["nft", "-f", str(script)])
    return SnoopingSwitch(lab, segment, table)


def parse_port_counters(nft_json: str) -> dict[str, int]:
    """Packets dropped per switch port, from ``nft -j list table bridge snoop_<segment>``:
    each rule matching ``iifname`` with a counter. LabError on output it cannot read."""
    try:
        items = json.loads(nft_json)["nftables"]
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(f"nft -j output unreadable: {exc}") from None
    out: dict[str, int] = {}
    for item in items:
        rule = item.get("rule") if isinstance(item, dict) else None
        if not rule:
            continue
        port, packets = None, None
        for expr in rule.get("expr", []):
            match = expr.get("match") if isinstance(expr, dict) else None
            if match and match.get("left", {}).get("meta", {}).get("key") == "iifname":
                port = str(match.get("right"))
            if isinstance(expr, dict) and "counter" in expr:
                packets = int(expr["counter"].get("packets", 0))
        if port is not None and packets is not None:
            out[port] = out.get(port, 0) + packets
    return out


def dropped_by_port(lab: Lab, segment: str) -> dict[str, int]:
    """DHCP server replies the snooping rules on ``segment`` dropped so far, per port."""
    return parse_port_counters(lab.run(None, ["nft", "-j", "list", "table", "bridge",
                                              table_name(segment)]))


def port_drops(lab: Lab, segment: str) -> dict[str, int]:
    """Per lab host on ``segment``, the DHCP server replies its switch port dropped
    (a trusted port has no rule: it drops nothing, and reads 0)."""
    by_port = dropped_by_port(lab, segment)
    return {host: by_port.get(info.switch_port, 0)
            for (host, seg), info in sorted(lab.links.items()) if seg == segment}


def dropped_replies(lab: Lab, segment: str) -> int:
    """How many DHCP server replies the snooping rules on ``segment`` dropped so far."""
    return sum(dropped_by_port(lab, segment).values())
