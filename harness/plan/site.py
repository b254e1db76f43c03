"""The whole site's wiring: where the Control Plane lives and how everything reaches it.

A scenario that declares any whole-site piece (``control_plane.location``, ``wan:``,
``dns:``, ``ntp:``) is wired like a real site, not the lab's shortcut of a Control
Plane with a leg on every boot segment:

- ``mgmt``: a management segment for the site's own services — ``svc`` (BIND, chrony)
  and, on site (standalone), the Control Plane's host ``cp``.
- ``gw``: the site router, with a leg on every boot segment that has site hosts on it
  and on ``mgmt``. It is every boot segment's default gateway (DHCP option 3); relayed
  segments keep their relay as gateway and the relay forwards upstream to ``gw``.
- with ``wan:`` (or ``location: cloud``): the WAN router ``wan`` (``mgmt`` ↔ ``wan``
  segment, NAT and the egress filter) and ``cloud``, the Control Plane's namespace
  beyond it. ``gw`` sends everything off-site to ``wan``.
- a cloud site that also has ``standalone`` clusters gets a second Control Plane on
  site, host ``cp`` on ``mgmt``, for them (the guide: "a scenario may have both").

Every host that must reach another subnet gets explicit routes here, so the builder
only adds what the plan lists; nothing is multi-homed onto a segment it would not
touch at a real site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.lab import Host, HostLink, Segment
from harness.plan.items import DefaultRoute, DnsPlan, HostOn, NtpPlan, Route
from harness.scenario.site_model import DnsSpec, NtpSpec, WanSpec
from harness.wan.config import WanRouterConfig

MGMT, GW, SVC, WAN_HOST, CLOUD, WAN_SEGMENT = "mgmt", "gw", "svc", "wan", "cloud", "wan"
SITE_CP_HOST = "cp"
RESERVED_NAMES = (MGMT, GW, SVC, WAN_HOST, CLOUD)


@dataclass(frozen=True)
class WholeSite:
    """What the whole-site knobs add to a plan."""

    location: str                        # "site" or "cloud"
    cp_host: str
    cp_segment: str                      # where the Control Plane's address is
    segments: tuple[Segment, ...]
    hosts: tuple[Host, ...]
    gateways: tuple[tuple[str, HostOn], ...]   # boot segment -> its default gateway
    routes: tuple[Route | DefaultRoute, ...]
    wan: WanRouterConfig | None
    dns: DnsPlan | None
    ntp: NtpPlan | None
    tls_fault: str | None
    site_cp_host: str | None = None      # a second, on-site Control Plane (mixed modes)

    def gateway(self, segment: str) -> HostOn | None:
        """The default gateway machines on ``segment`` are told of (DHCP option 3)."""
        return dict(self.gateways).get(segment)


def declares_whole_site(scenario: Any) -> bool:
    """True when the scenario asks for any piece of the whole site."""
    cp = getattr(scenario, "control_plane", None)
    return any(getattr(scenario, k, None) is not None for k in ("wan", "dns", "ntp")) or (
        getattr(cp, "location", None) is not None)


def whole_site(scenario: Any, hosts_on: dict[str, tuple[str, ...]],
               relayed: dict[str, tuple[str, str]]) -> WholeSite:
    """The whole site's pieces.

    ``hosts_on``: boot segment -> the lab hosts on it that are not machines (proxies, site
    DHCP servers, relays' upstream legs); ``relayed``: relayed segment -> (relay host,
    upstream segment).
    """
    cp_spec = scenario.control_plane
    wan_spec: WanSpec | None = getattr(scenario, "wan", None)
    location = getattr(cp_spec, "location", None) or ("cloud" if wan_spec else "site")
    if location == "cloud" and wan_spec is None:
        wan_spec = WanSpec()
    dns_spec: DnsSpec | None = getattr(scenario, "dns", None)
    ntp_spec: NtpSpec | None = getattr(scenario, "ntp", None)

    boot = [s.name for s in scenario.segments if s.name not in relayed]
    segments = [Segment(MGMT, ipv6_ra=False)]
    hosts = [Host(GW, (*(HostLink(s) for s in boot), HostLink(MGMT)), forwarding=True)]
    if dns_spec is not None or ntp_spec is not None:
        hosts.append(Host(SVC, (HostLink(MGMT),)))
    wan = None
    if wan_spec is not None:
        wan = WanRouterConfig(router=WAN_HOST, site_segment=MGMT, wan_segment=WAN_SEGMENT,
                              cloud=CLOUD, egress_ports=tuple(wan_spec.ports),
                              private=wan_spec.private, loss_pct=wan_spec.loss_pct,
                              latency_ms=wan_spec.latency_ms)
        wan_segment, (router, cloud) = wan.topology_parts()
        segments.append(wan_segment)
        hosts += [router, cloud]
    site_cp_host = None
    if location == "site":
        hosts.append(Host(SITE_CP_HOST, (HostLink(MGMT),)))
        cp_host, cp_segment = SITE_CP_HOST, MGMT
    else:
        cp_host, cp_segment = CLOUD, WAN_SEGMENT
        if has_standalone_clusters(scenario):
            hosts.append(Host(SITE_CP_HOST, (HostLink(MGMT),)))
            site_cp_host = SITE_CP_HOST

    gw_mgmt = HostOn(GW, MGMT)
    gateways = [(s, HostOn(GW, s)) for s in boot]
    gateways += [(seg, HostOn(relay, seg)) for seg, (relay, _up) in relayed.items()]
    routes: list[Route | DefaultRoute] = []
    # every boot-segment host sends off-segment traffic to the site router (a host on
    # several segments through the first of them)
    routed: set[str] = set()
    for seg in boot:
        for host in hosts_on.get(seg, ()):
            if host not in routed:
                routed.add(host)
                routes.append(DefaultRoute(host, HostOn(GW, seg)))
    # management hosts reach the boot segments (and those behind relays) through gw
    lan_subnets = [*boot, *relayed]
    mgmt_hosts = [h.name for h in hosts if h.name in (SVC, SITE_CP_HOST)]
    if wan is not None:
        mgmt_hosts.append(WAN_HOST)
    for host in mgmt_hosts:
        routes += [Route(host, seg, gw_mgmt) for seg in lan_subnets]
    # the site router reaches relayed segments through their relays
    for seg, (relay, upstream) in relayed.items():
        routes.append(Route(GW, seg, HostOn(relay, upstream)))
    if wan is not None:
        routes.append(DefaultRoute(GW, HostOn(WAN_HOST, MGMT)))
    dns = None
    if dns_spec is not None:
        dns = DnsPlan(SVC, MGMT, dns_spec.zone, dns_spec.reverse, dns_spec.updates)
    ntp = NtpPlan(SVC, MGMT, ntp_spec.offered) if ntp_spec is not None else None
    return WholeSite(location, cp_host, cp_segment, tuple(segments), tuple(hosts),
                     tuple(gateways), tuple(routes), wan, dns, ntp,
                     getattr(cp_spec, "tls_fault", None), site_cp_host)


def has_standalone_clusters(scenario: Any) -> bool:
    """True when a cluster of the scenario is managed from the site."""
    return any(getattr(c, "mode", "standalone") == "standalone"
               for c in getattr(scenario, "clusters", ()))
