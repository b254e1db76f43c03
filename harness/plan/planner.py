"""``plan(scenario) -> SitePlan``: every wiring decision of a run, made once, without root.

Declared, validated, then built (Mininet's Topo): this module decides — host names
and links, the Control Plane's place and seed, the site DHCP servers' ranges and
reservations, relays with the servers they forward to and the routes back, snooping
trust, proxy kinds, each machine copy — and :mod:`harness.plan.validate` says what of
it cannot be wired. A builder only executes the result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, Literal

from harness.errors import TopologyError
from harness.lab import Topology
from harness.lab.topology import by_name
from harness.plan.cmdline import NODE_CMDLINE
from harness.plan.errors import PlanError
from harness.plan.items import (
    BootProfile,
    ClusterSeed,
    ControlPlanePlan,
    ControlPlaneSeed,
    DhcpServerPlan,
    HostOn,
    MachineCopy,
    MachineSeed,
    PlannedStep,
    ProxyKind,
    ProxyPlan,
    ProxySeed,
    RelayedRange,
    RelayPlan,
    ReservedPool,
    Route,
    RuleInputs,
    SitePlan,
    SnoopingPlan,
)
from harness.plan.site import MGMT, WholeSite, declares_whole_site, whole_site
from harness.plan.topology import HostRoles, site_topology
from harness.plan.validate import problems_of
from harness.scenario.checks import check, machine_macs
from harness.scenario.model import ProxySpec, Scenario, Step

# A segment with this many machines gets one reserved address per machine: with
# --no-ping dnsmasq holds nothing between OFFER and REQUEST, and in a storm of hundreds
# it NAKs many of them ("address in use") over and over. Small segments stay dynamic.
RESERVE_FROM = 100
PXECLIENT_OPTION = "60,PXEClient"   # a misconfigured site server's option 60 (SITE-2)
LINK_ACTIONS = ("cut_link", "restore_link", "netem")
CpVia = Callable[[str, Iterable[str | None]], HostOn]   # (segment, clusters) -> its CP
RunProxyKind = Literal["container", "process"]   # a run's --boot-proxy-kind


def plan(scenario: Scenario, *, boot_proxy_image: str | None = None,
         boot_proxy_kind: RunProxyKind | None = None) -> SitePlan:
    """The site plan of ``scenario``; :class:`PlanError` lists every problem otherwise.

    ``boot_proxy_image`` is the run's ``--boot-proxy-image``: every proxy that is not
    dnsmasq then runs as that container. ``boot_proxy_kind`` is the run's
    ``--boot-proxy-kind`` (see :func:`proxy_kind`)."""
    found = [message for _, message in check(scenario)]
    if found:  # names that do not resolve: nothing below could be decided
        raise PlanError(scenario.name, found)
    whole = declares_whole_site(scenario)
    topology, roles = site_topology(scenario, control_plane_on_every_segment=not whole)
    extra = whole_site(scenario, _hosts_on(scenario, roles),
                       {seg: (host, _upstream(scenario, seg))
                        for seg, host in roles.relay_hosts}) if whole else None
    if extra is not None:
        topology = Topology(segments=(*topology.segments, *extra.segments),
                            hosts=(*topology.hosts, *extra.hosts))
        control_plane = ControlPlanePlan(
            extra.cp_host, "site" if extra.location == "site" else "cloud",
            (extra.cp_segment,), scenario.control_plane.tls or extra.wan is not None,
            extra.tls_fault,
            extra.dns is not None and extra.dns.updates == "control-plane")
    else:
        control_plane = ControlPlanePlan(roles.cp_host, "every-segment",
                                         tuple(s.name for s in scenario.segments),
                                         scenario.control_plane.tls)
    try:
        topology.validate()
    except TopologyError as exc:
        found.append(str(exc))

    on_site = _standalone(scenario) if extra is not None and extra.site_cp_host else set()

    def cp_via(segment: str, clusters: Iterable[str | None] = ()) -> HostOn:
        """The Control Plane a proxy or machine of ``clusters`` talks to: on a mixed site
        the on-site one for standalone clusters, else the main one."""
        if extra is not None:
            if extra.site_cp_host and on_site & set(clusters):
                return HostOn(extra.site_cp_host, MGMT)
            return HostOn(extra.cp_host, extra.cp_segment)
        return HostOn(roles.cp_host, segment)

    keys = copy_keys(scenario)
    macs = machine_macs(scenario)
    dhcp_servers = _dhcp_servers(scenario, roles, macs)
    if extra is not None:
        dhcp_servers = tuple(_whole_site_dhcp(scenario, d, extra, keys, macs)
                             for d in dhcp_servers)
    proxies = tuple(_proxy(scenario, p.name, macs, (boot_proxy_image, boot_proxy_kind), cp_via)
                    for p in scenario.proxies)
    site = SitePlan(
        name=scenario.name, tier=scenario.tier, time_scale=scenario.time_scale,
        timeout=scenario.timeout, topology=topology,
        control_plane=control_plane,
        seed=_seed(scenario, keys, macs, exclude=on_site),
        dhcp_servers=dhcp_servers,
        relays=_relays(scenario, roles),
        snooping=_snooping(scenario, roles),
        proxies=proxies,
        machine_hosts=roles.machine_hosts,
        machines=_copies(scenario, roles, keys, macs, cp_via),
        steps=_steps(scenario, roles, keys),
        rule_inputs=RuleInputs(
            proxies=tuple((at, p.served_macs) for p in proxies for at in p.addresses),
            site_dhcp=tuple(d.address for d in dhcp_servers),
            relays=tuple(HostOn(host, seg) for seg, host in roles.relay_hosts)),
        wan=extra.wan if extra else None,
        dns=extra.dns if extra else None,
        ntp=extra.ntp if extra else None,
        routes=extra.routes if extra else (),
        gateways=extra.gateways if extra else (),
        site_control_plane=dataclasses.replace(
            control_plane, host=extra.site_cp_host, placement="site", segments=(MGMT,),
            tls=scenario.control_plane.tls, tls_fault=None, dns_updates=False,
            name="controlplane-site") if extra is not None and extra.site_cp_host else None,
        site_seed=_seed(scenario, keys, macs, only=on_site, faults=False)
        if on_site else None,
    )
    found += problems_of(scenario, site)
    if found:
        raise PlanError(scenario.name, found)
    return site


def _upstream(scenario: Scenario, segment: str) -> str:
    spec = next(s for s in scenario.segments if s.name == segment)
    assert spec.relay is not None
    return spec.relay.upstream


def _hosts_on(scenario: Scenario, roles: HostRoles) -> dict[str, tuple[str, ...]]:
    """Per segment, the site's own hosts on it (DHCP servers, proxies, relays' upstream
    legs): the hosts that need a route off the segment in a whole site."""
    out: dict[str, list[str]] = {s.name: [] for s in scenario.segments}
    for host, spec in zip(roles.dhcp_hosts, scenario.site_dhcp, strict=True):
        out[spec.segment].append(host)
    for proxy in scenario.proxies:
        for seg in proxy.segments:
            out[seg].append(proxy.name)
    for seg, host in roles.relay_hosts:
        out[_upstream(scenario, seg)].append(host)
    return {seg: tuple(hosts) for seg, hosts in out.items()}


def _whole_site_dhcp(scenario: Scenario, server: DhcpServerPlan, extra: WholeSite,
                     keys: dict[str, tuple[str, ...]], macs: dict[str, list[str]]
                     ) -> DhcpServerPlan:
    """A site DHCP server of a whole site: its kind, the segment's gateway, the site's DNS
    and NTP servers, and (for DDNS) each machine's name."""
    index = int(server.name.removeprefix("site-dhcp"))
    kind: Literal["dnsmasq", "kea"] = getattr(scenario.site_dhcp[index], "kind", "dnsmasq")
    names = tuple((mac, key) for m in scenario.machines if m.cluster is not None
                  for key, mac in zip(keys[m.name], macs[m.name], strict=True))
    dns, ntp = extra.dns, extra.ntp
    return dataclasses.replace(
        server, kind=kind, router=extra.gateway(server.segment),
        dns=dns.address if dns else None,
        ntp=ntp.address if ntp and ntp.offered else None,
        domain=dns.zone if dns else None,
        ddns=dns is not None and dns.updates == "dhcp",
        hostnames=names if dns is not None and dns.updates == "dhcp" else ())


def copy_keys(scenario: Scenario) -> dict[str, tuple[str, ...]]:
    """Each scenario machine's copy keys: its name alone, or ``<name>1`` … ``<name>N``."""
    return {m.name: (m.name,) if m.count == 1 else tuple(f"{m.name}{i + 1}"
                                                         for i in range(m.count))
            for m in scenario.machines}


def _standalone(scenario: Scenario) -> set[str]:
    return {c.name for c in scenario.clusters if c.mode == "standalone"}


def _seed(scenario: Scenario, keys: dict[str, tuple[str, ...]],
          macs: dict[str, list[str]], *, only: set[str] | None = None,
          exclude: set[str] | None = None, faults: bool = True) -> ControlPlaneSeed:
    """One Control Plane's seed: the clusters in ``only`` (all when None) but those in
    ``exclude``, their machines and the proxies serving them (a mixed site seeds its
    two Control Planes with one call each)."""
    def mine(cluster: str | None) -> bool:
        return (only is None or cluster in only) and cluster not in (exclude or set())

    clusters = tuple(
        ClusterSeed(c.name, c.expected_nodes or sum(
            m.count for m in scenario.machines if m.cluster == c.name) or 1,
            c.mode, c.environment)
        for c in scenario.clusters if mine(c.name))
    profile = None
    if scenario.clusters:
        profile = BootProfile("default", "vmlinuz", "initrd.img", NODE_CMDLINE.template(),
                              "node-image" if scenario.tier == "vm" else "stand-in")
    by_step = assigned_by_step(scenario)
    seeds = [(m.name, MachineSeed(key, mac, m.cluster, m.role, "default"))
             for m in scenario.machines if m.cluster is not None and mine(m.cluster)
             for key, mac in zip(keys[m.name], macs[m.name], strict=True)]
    machines = tuple(seed for name, seed in seeds if name not in by_step)
    later = tuple(seed for name, seed in seeds if name in by_step)
    # a proxy registers where its clusters live (one without clusters: the main one)
    proxies = tuple(ProxySeed(p.name, tuple(p.clusters), tuple(p.segments))
                    for p in scenario.proxies
                    if any(mine(c) for c in p.clusters) or (not p.clusters and only is None))
    return ControlPlaneSeed(clusters, profile, machines, proxies,
                            tuple(scenario.control_plane.faults) if faults else (), later)


def assigned_by_step(scenario: Scenario) -> set[str]:
    """Machines an ``assign`` step gives their cluster: the Control Plane does not know
    them before that step."""
    return {name for step in scenario.steps if step.action == "assign"
            for name in step_field(step, "machines") or ()}


def relayed_into(scenario: Scenario, upstream: str) -> list[str]:
    """Segments whose relay forwards to ``upstream``, in segment order."""
    return [s.name for s in scenario.segments if s.relay and s.relay.upstream == upstream]


def _dhcp_servers(scenario: Scenario, roles: HostRoles,
                  macs: dict[str, list[str]]) -> tuple[DhcpServerPlan, ...]:
    relay_of = dict(roles.relay_hosts)
    out = []
    for i, (host, spec) in enumerate(zip(roles.dhcp_hosts, scenario.site_dhcp, strict=True)):
        relayed = relayed_into(scenario, spec.segment)
        reserved = []
        for seg in (spec.segment, *relayed):
            machines = [m for m in scenario.machines if m.segment == seg]
            if sum(m.count for m in machines) >= RESERVE_FROM:
                reserved.append(ReservedPool(seg, tuple(mac for m in machines
                                                        for mac in macs[m.name])))
        out.append(DhcpServerPlan(
            name=f"site-dhcp{i}", host=host, segment=spec.segment,
            relayed=tuple(RelayedRange(seg, HostOn(relay_of[seg], seg)) for seg in relayed),
            forced_options=(PXECLIENT_OPTION,) if spec.sends_pxeclient else (),
            reserved=tuple(reserved)))
    return tuple(out)


def site_dhcp_on(scenario: Scenario, roles: HostRoles, segment: str | None) -> list[str]:
    """The hosts of the site DHCP servers on ``segment``, in ``site_dhcp`` order: what the
    word ``site-dhcp`` means in a relay's ``forwards_to``, a snooping trust list or a
    step's ``host:`` there."""
    return [h for h, d in zip(roles.dhcp_hosts, scenario.site_dhcp, strict=True)
            if d.segment == segment]


def servers_on(scenario: Scenario, roles: HostRoles, segment: str) -> tuple[str, ...]:
    """Hosts answering DHCP on ``segment``: its site DHCP servers, then its proxies."""
    return (*site_dhcp_on(scenario, roles, segment),
            *(p.name for p in scenario.proxies if segment in p.segments))


def _relays(scenario: Scenario, roles: HostRoles) -> tuple[RelayPlan, ...]:
    relay_of = dict(roles.relay_hosts)
    out = []
    for seg in scenario.segments:
        if seg.relay is None:
            continue
        host, upstream = relay_of[seg.name], seg.relay.upstream
        servers = servers_on(scenario, roles, upstream)
        forwarded = _forwarded(scenario, roles, upstream, seg.relay.forwards_to)
        gateway = HostOn(host, upstream)
        out.append(RelayPlan(
            name=f"relay-{seg.name}", host=host, downstream=seg.name, upstream=upstream,
            servers=tuple(HostOn(s, upstream) for s in servers if s in forwarded),
            routes=tuple(Route(s, seg.name, gateway) for s in servers)))
    return tuple(out)


def _forwarded(scenario: Scenario, roles: HostRoles, upstream: str,
               names: list[str] | None) -> set[str]:
    """The hosts a relay forwards to: ``forwards_to`` resolved ('site-dhcp' is the
    upstream's DHCP servers), or every server on the upstream when it is not given. The
    routes back stay for all of them: a missing helper address is the mistake, not routing."""
    everyone = servers_on(scenario, roles, upstream)
    if names is None:
        return set(everyone)
    dhcp = set(site_dhcp_on(scenario, roles, upstream))
    return {h for h in everyone
            if h in names or ("site-dhcp" in names and h in dhcp)}


def _snooping(scenario: Scenario, roles: HostRoles) -> tuple[SnoopingPlan, ...]:
    relay_of = dict(roles.relay_hosts)
    out = []
    for seg in scenario.segments:
        if seg.snooping is None:
            continue
        trusted = [relay_of[seg.name]] if seg.name in relay_of else []
        for name in seg.snooping.trusted:
            if name == "site-dhcp":
                trusted += site_dhcp_on(scenario, roles, seg.name)
            else:
                trusted.append(name)
        out.append(SnoopingPlan(seg.name, tuple(trusted)))
    return tuple(out)


def proxy_kind(spec: ProxySpec, tier: str, run_image: str | None = None,
               run_kind: RunProxyKind | None = None) -> tuple[ProxyKind, str | None]:
    """How a proxy of the scenario runs: its kind and image (None: flexlab's own).

    Our proxy runs as a container by default, in every tier: the image is what a site
    deploys, so it is the system under test. A run's image (``--boot-proxy-image``) puts
    that image under test in every proxy that is not dnsmasq. ``kind: process`` in the
    file, or a run's ``--boot-proxy-kind process``, runs our proxy as a plain process for
    debugging — in the sim tier only for the file's word (the vm tier always deploys the
    image), in any tier for the run's; a proxy whose file names an image stays that
    container (a process cannot run someone else's image)."""
    if spec.kind == "dnsmasq":
        return "dnsmasq", None
    if run_image:
        return "container", run_image
    if spec.image:
        return "container", spec.image
    if run_kind is not None:
        return run_kind, None
    if spec.kind == "process" and tier != "vm":
        return "process", None
    return "container", None


def _proxy(scenario: Scenario, name: str, macs: dict[str, list[str]],
           run: tuple[str | None, RunProxyKind | None], cp_via: CpVia) -> ProxyPlan:
    spec = next(p for p in scenario.proxies if p.name == name)
    kind, image = proxy_kind(spec, scenario.tier, *run)
    served = sorted({mac for m in scenario.machines if m.cluster in spec.clusters
                     for mac in macs[m.name]})
    return ProxyPlan(name=name, kind=kind, image=image, segments=tuple(spec.segments),
                     clusters=tuple(spec.clusters), served_macs=tuple(served),
                     start=spec.start, cp_via=cp_via(spec.segments[0], spec.clusters))


def _copies(scenario: Scenario, roles: HostRoles, keys: dict[str, tuple[str, ...]],
            macs: dict[str, list[str]], cp_via: CpVia) -> tuple[MachineCopy, ...]:
    attach = dict(roles.machine_hosts)
    return tuple(
        MachineCopy(key=key, group=m.name, mac=mac, firmware=m.firmware, segment=m.segment,
                    attach_host=attach[m.segment], nic=m.nic, facts=m.facts,
                    driver=m.driver or scenario.tier, cluster=m.cluster, role=m.role,
                    cp_via=cp_via(m.segment, (m.cluster,)))
        for m in scenario.machines
        for key, mac in zip(keys[m.name], macs[m.name], strict=True))


def step_field(step: Step, name: str) -> Any:
    """A step's field, or None for an action without it (each action may get its own
    step type; a plan must not care which shape the model has today)."""
    return getattr(step, name, None)


def link_host(scenario: Scenario, roles: HostRoles, name: str, segment: str | None) -> str:
    """The lab host behind a step's ``host:``: 'site-dhcp' (the server on that segment),
    a machine group (its segment's attachment), else a proxy or ``cp`` by name."""
    if name == "site-dhcp":
        on = site_dhcp_on(scenario, roles, segment)
        return on[0] if on else name
    group = by_name(scenario.machines, name)
    return dict(roles.machine_hosts)[group.segment] if group is not None else name


def _steps(scenario: Scenario, roles: HostRoles,
           keys: dict[str, tuple[str, ...]]) -> tuple[PlannedStep, ...]:
    out = []
    for step in sorted(scenario.steps, key=lambda s: s.at):  # stable: file order at ties
        copies = tuple(k for name in step_field(step, "machines") or () for k in keys[name])
        link = None
        host, segment = step_field(step, "host"), step_field(step, "segment")
        if step.action in LINK_ACTIONS and host is not None and segment is not None:
            link = HostOn(link_host(scenario, roles, host, segment), segment)
        out.append(PlannedStep(step.at, step, copies, link))
    return tuple(out)

