"""Which lab hosts a scenario needs, what they are called, and where they attach.

The naming rule, written down once (Mininet's ``h1``/``s1``): ``cp`` is the Control
Plane's host; ``dhcp<n>`` the n-th site DHCP server; proxies keep their own names;
``relay<i>`` the relay of the i-th segment (a forwarding host on it and its upstream);
``mach<i>`` the unaddressed attachment of the i-th segment's machines. Scenario checks
reserve these names, so a proxy cannot take one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.lab import Host, HostLink, Segment, Topology
from harness.scenario.model import Scenario

CP_HOST = "cp"


def dhcp_host(index: int) -> str:
    """Host of the ``index``-th site DHCP server."""
    return f"dhcp{index}"


def relay_host(segment_index: int) -> str:
    """Host of the relay on the ``segment_index``-th segment."""
    return f"relay{segment_index}"


def machine_host(segment_index: int) -> str:
    """Host the machines of the ``segment_index``-th segment attach through."""
    return f"mach{segment_index}"


def prefix_for(scenario: Scenario, segment: str) -> int:
    """A prefix whose upper half (the DHCP pool) holds the segment's machines twice over,
    plus room for the lab's own hosts; never wider than /16 nor narrower than /24."""
    machines = sum(m.count for m in scenario.machines if m.segment == segment)
    need = 4 * machines + 64
    return max(16, min(24, 32 - math.ceil(math.log2(need))))


def pool_size(prefixlen: int) -> int:
    """Addresses in the DHCP pool of a /``prefixlen`` (the upper half of its hosts;
    :meth:`harness.lab.Lab.dhcp_pool`)."""
    hosts = 2 ** (32 - prefixlen) - 2
    return hosts - hosts // 2


@dataclass(frozen=True)
class HostRoles:
    """Who is who among the topology's hosts."""

    cp_host: str
    dhcp_hosts: tuple[str, ...]                 # in site_dhcp order
    relay_hosts: tuple[tuple[str, str], ...]    # (relayed segment, relay host)
    machine_hosts: tuple[tuple[str, str], ...]  # (segment, attachment host)


def site_topology(scenario: Scenario, *, control_plane_on_every_segment: bool = True
                  ) -> tuple[Topology, HostRoles]:
    """The boot segments' hosts and links, not yet validated.

    The lab's shortcut gives the Control Plane a link on every segment; a whole site
    places it itself (:mod:`harness.plan.site`). Machines' attachments are unaddressed
    (a DHCP client's interface)."""
    segments = tuple(Segment(s.name, ipv6_ra=s.ipv6_ra, prefixlen=prefix_for(scenario, s.name))
                     for s in scenario.segments)
    hosts = ([Host(CP_HOST, tuple(HostLink(s.name) for s in scenario.segments))]
             if control_plane_on_every_segment else [])
    dhcp_hosts = tuple(dhcp_host(i) for i in range(len(scenario.site_dhcp)))
    hosts += [Host(name, (HostLink(d.segment),))
              for name, d in zip(dhcp_hosts, scenario.site_dhcp, strict=True)]
    hosts += [Host(p.name, tuple(HostLink(s) for s in p.segments)) for p in scenario.proxies]
    relays: list[tuple[str, str]] = []
    attach: list[tuple[str, str]] = []
    for i, seg in enumerate(scenario.segments):
        if seg.relay is not None:
            relays.append((seg.name, relay_host(i)))
            hosts.append(Host(relay_host(i), (HostLink(seg.name), HostLink(seg.relay.upstream)),
                              forwarding=True))
        if any(m.segment == seg.name for m in scenario.machines):
            attach.append((seg.name, machine_host(i)))
            hosts.append(Host(machine_host(i), (HostLink(seg.name, address=None),)))
    topology = Topology(segments=segments, hosts=tuple(hosts))
    return topology, HostRoles(CP_HOST, dhcp_hosts, tuple(relays), tuple(attach))
