"""From a scenario to the lab topology it needs: which hosts exist and where they attach.

Naming: ``cp`` (the Control Plane, one address on every segment so proxies and
machines reach it without routing), ``dhcp<n>`` (site DHCP servers),
proxies by their own name, ``relay<n>`` (one per relayed segment, forwarding),
and ``mach<n>`` (the attachment of the emulated machines of segment n).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.lab import Host, HostLink, Segment, Topology
from harness.scenario.model import Scenario


@dataclass(frozen=True)
class SiteLayout:
    """The topology plus the role of each host."""

    topology: Topology
    cp_host: str
    dhcp_hosts: dict[int, str]              # site_dhcp index -> host
    relay_hosts: dict[str, str]             # relayed segment -> host
    machine_hosts: dict[str, str]           # segment -> host the machines attach through

    def relays_into(self, scenario: Scenario, upstream: str) -> list[str]:
        """Relayed segments whose relay forwards to ``upstream``."""
        return [s.name for s in scenario.segments if s.relay and s.relay.upstream == upstream]


def _prefix_for(scenario: Scenario, segment: str) -> int:
    """A subnet whose upper half (the DHCP pool) holds the segment's machines twice over."""
    machines = sum(m.count for m in scenario.machines if m.segment == segment)
    need = 4 * machines + 64
    return max(16, min(24, 32 - math.ceil(math.log2(need))))


def layout_for(scenario: Scenario) -> SiteLayout:
    """The hosts and links a scenario needs (validated like any topology)."""
    segments = tuple(
        Segment(s.name, ipv6_ra=s.ipv6_ra, prefixlen=_prefix_for(scenario, s.name))
        for s in scenario.segments
    )
    hosts: list[Host] = [Host("cp", tuple(HostLink(s.name) for s in scenario.segments))]
    dhcp_hosts: dict[int, str] = {}
    for i, dhcp in enumerate(scenario.site_dhcp):
        name = f"dhcp{i}"
        dhcp_hosts[i] = name
        hosts.append(Host(name, (HostLink(dhcp.segment),)))
    for proxy in scenario.proxies:
        hosts.append(Host(proxy.name, tuple(HostLink(s) for s in proxy.segments)))
    relay_hosts: dict[str, str] = {}
    machine_hosts: dict[str, str] = {}
    for i, seg in enumerate(scenario.segments):
        if seg.relay is not None:
            name = f"relay{i}"
            relay_hosts[seg.name] = name
            hosts.append(Host(name, (HostLink(seg.name), HostLink(seg.relay.upstream)),
                              forwarding=True))
        if any(m.segment == seg.name for m in scenario.machines):
            name = f"mach{i}"
            machine_hosts[seg.name] = name
            hosts.append(Host(name, (HostLink(seg.name, address=None),)))
    topology = Topology(segments=segments, hosts=tuple(hosts))
    topology.validate()
    return SiteLayout(topology, "cp", dhcp_hosts, relay_hosts, machine_hosts)
