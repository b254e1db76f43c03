"""What in a site plan cannot be wired, found before anything is built.

The scenario checks (:mod:`harness.scenario.checks`) make sure names resolve; these look
at the decided plan: a component that could not start as declared, a relay with nobody
to forward to, a powered machine that would never get an address, a step whose target
has no link. Every problem is returned, in plan order, each naming what to change.
"""

from __future__ import annotations

from harness.plan.items import PlannedStep, SitePlan
from harness.plan.site import RESERVED_NAMES
from harness.plan.topology import pool_size
from harness.scenario.model import Scenario

POWER_ACTIONS = ("power_on", "reset")


def problems_of(scenario: Scenario, site: SitePlan) -> list[str]:
    """Every wiring problem of ``site`` (planned from ``scenario``); empty when buildable."""
    return [*_proxy_problems(scenario, site), *_relay_problems(site),
            *_forwards_problems(scenario),
            *_dhcp_problems(site), *_snooping_problems(site), *_machine_problems(site),
            *_step_problems(site), *_whole_site_problems(scenario, site)]


def _whole_site_problems(scenario: Scenario, site: SitePlan) -> list[str]:
    """The guide's modes mean something: hybrid clusters are run from the cloud, over the
    WAN; standalone ones from the site (a cloud site with standalone clusters gets a
    second, on-site Control Plane for them). A Boot Proxy syncs from one Control Plane.
    A DDNS site needs a DHCP server that does DDNS."""
    out: list[str] = []
    placement = site.control_plane.placement
    taken = {s.name for s in scenario.segments} | {p.name for p in scenario.proxies}
    if placement == "every-segment":
        return out  # the lab's shortcut: no site to place anything in
    for name in sorted(taken & set(RESERVED_NAMES)):
        out.append(f"{name!r} names the whole site's own segment or host "
                   f"({', '.join(RESERVED_NAMES)}); rename it")
    modes = {c.name: c.mode for c in scenario.clusters}
    for cluster in scenario.clusters:
        if cluster.mode == "hybrid" and placement != "cloud":
            out.append(f"cluster {cluster.name!r} is hybrid: its Control Plane is in the "
                       "cloud — set control_plane.location: cloud (with a wan:)")
    if placement == "cloud" and modes and "hybrid" not in modes.values():
        out.append(f"no cluster is hybrid, so the cloud Control Plane would manage nothing "
                   f"({', '.join(modes)} standalone: their Control Plane is on site) — set "
                   "control_plane.location: site, or make a cluster hybrid")
    for proxy in scenario.proxies:
        both = sorted({modes.get(c, "") for c in proxy.clusters} - {""})
        if len(both) > 1:
            out.append(f"proxy {proxy.name!r} serves hybrid and standalone clusters, but a "
                       "Boot Proxy syncs from one Control Plane (the cloud one or the site's) "
                       "— declare one proxy per Control Plane")
    if site.dns is not None and site.dns.updates == "dhcp":
        plain = [d.name for d in site.dhcp_servers if d.kind != "kea"]
        if plain:
            out.append(f"dns.updates: dhcp needs a DHCP server that sends DDNS updates; "
                       f"{', '.join(plain)} is dnsmasq — use site_dhcp kind: kea")
    if site.control_plane.dns_updates and placement == "cloud":
        out.append("dns.updates: control-plane with a cloud Control Plane would open a "
                   "connection into the site (WAN-1); use dns.updates: dhcp (kind: kea)")
    return out


def _linked(site: SitePlan, host: str, segment: str) -> bool:
    return any(h.name == host and any(link.segment == segment for link in h.links)
               for h in site.topology.hosts)


def _proxy_problems(scenario: Scenario, site: SitePlan) -> list[str]:
    out = []
    for spec, proxy in zip(scenario.proxies, site.proxies, strict=True):
        if proxy.kind != "dnsmasq":
            continue
        if len(proxy.segments) != 1:
            out.append(f"proxy {proxy.name!r}: kind dnsmasq serves exactly one segment, not "
                       f"{len(proxy.segments)} ({', '.join(proxy.segments)}); declare one "
                       "dnsmasq proxy per segment")
        if spec.image is not None:
            out.append(f"proxy {proxy.name!r}: kind dnsmasq runs the host's dnsmasq, so "
                       f"image {spec.image!r} cannot be used; drop image: or use kind: "
                       "container")
    return out


def _relay_problems(site: SitePlan) -> list[str]:
    return [f"relay on segment {r.downstream!r} forwards to segment {r.upstream!r}, where no "
            "site DHCP server or Boot Proxy listens; put one there or change the upstream"
            for r in site.relays if not r.servers]


def _forwards_problems(scenario: Scenario) -> list[str]:
    """A relay's ``forwards_to`` names servers on its upstream segment."""
    out = []
    for seg in scenario.segments:
        if seg.relay is None:
            continue
        up = seg.relay.upstream
        on_up = {p.name for p in scenario.proxies if up in p.segments}
        if any(d.segment == up for d in scenario.site_dhcp):
            on_up.add("site-dhcp")
        out += [f"relay on segment {seg.name!r} forwards to {name!r}, which is not on its "
                f"upstream segment {up!r}" for name in seg.relay.forwards_to or ()
                if name not in on_up]
    return out


def _dhcp_problems(site: SitePlan) -> list[str]:
    out = []
    for server in site.dhcp_servers:
        for pool in server.reserved:
            room = pool_size(site.topology.segment(pool.segment).prefixlen)
            if len(pool.macs) > room:
                out.append(f"segment {pool.segment!r}: {len(pool.macs)} machines need "
                           f"reserved leases but its DHCP pool holds {room}; split the "
                           "machines over more segments")
    return out


def _snooping_problems(site: SitePlan) -> list[str]:
    return [f"snooping on segment {s.segment!r} trusts {host!r}, which has no port on "
            f"{s.segment!r}; trust only components linked to that segment"
            for s in site.snooping for host in s.trusted if not _linked(site, host, s.segment)]


def _machine_problems(site: SitePlan) -> list[str]:
    out = []
    seen: dict[str, str] = {}
    for copy in site.machines:
        if copy.key in seen and seen[copy.key] != copy.group:
            out.append(f"machine {copy.group!r}: copy {copy.key!r} has the name of a copy of "
                       f"{seen[copy.key]!r}; rename one of the machines")
        seen.setdefault(copy.key, copy.group)
        if copy.driver != site.tier:
            out.append(f"machine {copy.key!r} asks for driver {copy.driver!r}, but a "
                       f"{site.tier}-tier run drives every machine with {site.tier!r}; drop "
                       "driver: or change the scenario's tier")
    served = {d.segment for d in site.dhcp_servers} | {
        r.segment for d in site.dhcp_servers for r in d.relayed}
    powered = {key for step in site.steps if step.action in POWER_ACTIONS for key in step.keys}
    reported: set[str] = set()
    for copy in site.machines:
        if copy.key in powered and copy.segment not in served and copy.group not in reported:
            reported.add(copy.group)
            out.append(f"machine {copy.group!r} is powered on, but segment {copy.segment!r} "
                       "has no site DHCP server (none on it, none behind a relay): it would "
                       "never get an address")
    return out


def _step_problems(site: SitePlan) -> list[str]:
    out = []
    started = {p.name for p in site.proxies if p.start == "at-start"}
    for index, planned in enumerate(site.steps, start=1):
        what = f"step {index} ({planned.action} at {planned.at:g}s)"
        out += _step_problem(site, planned, what, started)
    return out


def _step_problem(site: SitePlan, planned: PlannedStep, what: str,
                  started: set[str]) -> list[str]:
    step, action = planned.step, planned.action
    proxy = getattr(step, "proxy", None)
    if action in ("start_proxy", "stop_proxy"):
        if proxy is None:
            return [f"{what} needs proxy:"]
        if action == "start_proxy":
            started.add(proxy)
        elif proxy not in started:
            return [f"{what} stops proxy {proxy!r} before any step starts it"]
    if action == "set_fault" and getattr(step, "fault", None) is None:
        return [f"{what} needs fault:"]
    if action in ("cut_link", "restore_link", "netem"):
        if planned.link is None:
            return [f"{what} needs host: and segment:"]
        host, segment = planned.link.host, planned.link.segment
        if not _linked(site, host, segment):
            named = getattr(step, "host", host)
            return [f"{what}: {named!r} (lab host {host!r}) has no link on segment "
                    f"{segment!r}"]
    return []
