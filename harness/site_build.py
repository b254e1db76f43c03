"""Building the whole site's items of a plan, and reading back what the rules need.

The plan (:mod:`harness.plan.site`) decided where the Control Plane lives, which
routes exist and what the site DHCP announces; this module makes it so, in order:
the WAN router (a real path to the cloud first), the static routes, the site's DNS
(BIND, TSIG-signed RFC 2136) and time source (chrony). It also renders the flags and
options the other components take from the whole site (the Control Plane's DNS
updater, each site DHCP server's kind and options), and at the end turns what the
lab observed into :class:`~harness.rules.site_facts.SiteFacts`.

Every component is entered on the caller's ExitStack, so a failed start and the end
of the run both tear it down.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.reversename

from harness.components.base import Component
from harness.components.chrony import ChronyNtp
from harness.components.dns_server import BindDns
from harness.components.dnsmasq import SiteDhcp
from harness.components.kea import KeaSiteDhcp, reverse_zone
from harness.judge.clocks import node_clock
from harness.lab.lab import Lab
from harness.lab.nsthread import NamespaceWorker
from harness.plan.items import DefaultRoute, DhcpServerPlan, SitePlan
from harness.rules.site_facts import DnsName, NodeClock, SiteFacts, TlsHop, WanFacts, WanFlow
from harness.wan.router import WanRouter

TSIG_NAME = "flexlab-site"


@dataclass
class BuiltSite:
    """The whole site's running parts (None: not in this plan)."""

    wan: WanRouter | None = None
    dns: BindDns | None = None
    ntp: ChronyNtp | None = None
    tsig: tuple[str, str] | None = None
    reverse_zones: tuple[str, ...] = ()
    components: list[Component] = field(default_factory=list)

    def control_plane_address(self, lab: Lab, plan: SitePlan) -> str | None:
        """The address site hosts use for the Control Plane when it is not its own host's
        address on the way (cloud: the tunnel end in private mode), else None."""
        if self.wan is not None and plan.control_plane.placement == "cloud":
            return self.wan.control_plane_address
        return None


def new_tsig_key(name: str = TSIG_NAME) -> tuple[str, str]:
    """A fresh hmac-sha256 TSIG key (name, base64 secret) for one lab."""
    return (name, base64.b64encode(os.urandom(32)).decode())


def _start(stack: contextlib.ExitStack, component: Component, built: BuiltSite) -> None:
    component.start()
    stack.callback(component.stop)
    component.wait_ready()
    built.components.append(component)


def add_routes(lab: Lab, plan: SitePlan) -> None:
    """The plan's static routes (whole site), each resolved to the built lab's addresses."""
    for route in plan.routes:
        via = route.via.address(lab.address)
        if isinstance(route, DefaultRoute):
            lab.add_route(route.host, "0.0.0.0/0", via)
        else:
            lab.add_route(route.host, str(lab.subnets[route.segment]), via)


def start_site(stack: contextlib.ExitStack, lab: Lab, plan: SitePlan) -> BuiltSite:
    """Start the plan's WAN router, routes, DNS and NTP; nothing when the plan has none."""
    built = BuiltSite()
    if plan.wan is not None:
        built.wan = WanRouter(lab, plan.wan)
        _start(stack, built.wan, built)
    add_routes(lab, plan)
    if plan.dns is not None:
        built.tsig = new_tsig_key()
        segments = [s.name for s in lab.topology.segments
                    if s.name not in (plan.dns.segment, plan.wan.wan_segment if plan.wan
                                      else "")]
        built.reverse_zones = tuple(dict.fromkeys(
            reverse_zone(str(lab.subnets[s])) for s in segments)) if plan.dns.reverse else ()
        built.dns = BindDns(lab, plan.dns.host, plan.dns.segment, {}, update_zone=plan.dns.zone,
                            tsig_key=built.tsig, reverse_zones=built.reverse_zones,
                            name="site-dns")
        _start(stack, built.dns, built)
    if plan.ntp is not None:
        built.ntp = ChronyNtp(lab, plan.ntp.host, plan.ntp.segment, name="site-ntp")
        _start(stack, built.ntp, built)
    return built


def control_plane_args(lab: Lab, plan: SitePlan, built: BuiltSite) -> tuple[str, ...]:
    """Flags for ``python -m controlplane``: its RFC 2136 updater when it places names."""
    if not plan.control_plane.dns_updates or plan.dns is None or built.tsig is None:
        return ()
    key_file = lab.temp_dir / "cp-dns.key"
    key_file.write_text(f"{built.tsig[0]}:{built.tsig[1]}\n")
    key_file.chmod(0o600)
    args = ["--dns-server", plan.dns.address.address(lab.address), "--dns-zone", plan.dns.zone,
            "--dns-key-file", str(key_file)]
    for zone in built.reverse_zones:
        args += ["--dns-reverse-zone", zone]
    return tuple(args)


def dhcp_server(lab: Lab, server: DhcpServerPlan, built: BuiltSite,
                reservations: dict[str, str] | None) -> Component:
    """The site DHCP component the plan asks for (dnsmasq or Kea), with the whole site's
    gateway, DNS, domain and NTP options."""
    relay_routers = {r.segment: r.router.address(lab.address) for r in server.relayed}
    relayed = tuple(r.segment for r in server.relayed)
    router = server.router.address(lab.address) if server.router else None
    dns = server.dns.address(lab.address) if server.dns else None
    ntp = server.ntp.address(lab.address) if server.ntp else None
    if server.kind == "kea":
        kea_forced = {int(code): value for code, _, value in
                      (opt.partition(",") for opt in server.forced_options)}
        return KeaSiteDhcp(
            lab, server.host, server.segment, relayed_segments=relayed,
            relay_routers=relay_routers, hostnames=dict(server.hostnames),
            reservations=reservations, domain=server.domain or "site.test",
            dns_server=dns, ntp_servers=(ntp,) if ntp else (), tsig_key=built.tsig,
            reverse=bool(built.reverse_zones), force_options=kea_forced, name=server.name,
            router=router, ddns=server.ddns)
    options: list[str] = []
    if dns:
        options.append(f"option:dns-server,{dns}")
    if server.domain:
        options.append(f"option:domain-name,{server.domain}")
    # option 42 is sent whether asked for or not: PXE ROMs and iPXE do not ask for it,
    # and the node's OS reads it from the lease it inherits
    forced = tuple(server.forced_options) + ((f"42,{ntp}",) if ntp else ())
    return SiteDhcp(lab, server.host, server.segment, force_options=forced,
                    relayed_segments=relayed, relay_routers=relay_routers, name=server.name,
                    reservations=reservations, router=router, options=tuple(options))


# -- what the rules read at the end ----------------------------------------------------
def lookup(server: str, name: str, rdtype: str) -> tuple[str, ...]:
    """The answers to one query (empty when the server gives none or cannot be asked);
    call it from a thread in the lab's namespace."""
    try:
        answer = dns.query.udp(dns.message.make_query(name, rdtype), server, timeout=2)
    except (dns.exception.DNSException, OSError):
        return ()
    return tuple(rr.to_text() for rrset in answer.answer for rr in rrset)


def _host_of_address(lab: Lab) -> dict[str, str]:
    return {str(info.address.ip): host for (host, _seg), info in lab.links.items()
            if info.address is not None}


def _seen_by_control_plane(log_path: Path) -> tuple[str, ...]:
    """Client addresses in the Control Plane's request log (one JSON event per line)."""
    return tuple(dict.fromkeys(str(e["client"]) for e in _json_lines(log_path)
                               if e.get("client")))


def site_facts(lab: Lab, plan: SitePlan, built: BuiltSite, cp_state: dict[str, Any],
               cp_log: Path | None) -> SiteFacts | None:
    """What the WAN/DNS/NTP rules judge; None when the plan has no whole site.

    Read while the lab still runs (the DNS is asked from a boot-LAN site host:
    :func:`dns_asker`)."""
    if plan.control_plane.placement == "every-segment":
        return None
    notes: dict[str, str] = {}
    wan = None
    if built.wan is not None and built.wan.addressing is not None:
        a = built.wan.addressing
        names = _host_of_address(lab)
        # nodes are no lab hosts: their leased addresses, as they reported them
        for m in cp_state.get("machines", []):
            for nic in (m.get("facts") or {}).get("nics", []):
                if nic.get("ipv4"):
                    names.setdefault(str(nic["ipv4"]), f"node {m.get('hostname', m['mac'])}")
        nat = str(a.tunnel_router.ip) if plan.wan and plan.wan.private else str(a.router_wan.ip)
        flows = tuple(WanFlow(f.src, f.dst, f.protocol, f.dport, f.direction, f.path,
                              f.verdict, f.packets, names.get(f.src, ""))
                      for f in built.wan.observed_flows())
        # the harness seeds the Control Plane from its own host: those requests are not
        # the site's
        own = {str(a.cloud_wan.ip), str(a.tunnel_cloud.ip), "127.0.0.1"}
        seen = tuple(c for c in (_seen_by_control_plane(cp_log) if cp_log else ())
                     if c not in own)
        wan = WanFacts(tuple(plan.wan.egress_ports) if plan.wan else (),
                       bool(plan.wan and plan.wan.private), nat, flows,
                       built.wan.control_plane_address, seen)
    machines = [m for m in cp_state.get("machines", []) if m.get("state") == "Ready"]
    if "machines" not in cp_state:
        why = f"the Control Plane's state could not be collected: {cp_state.get('error', '?')}"
        notes.update({"DNS-1": why, "NTP-1": why})
    names_facts: tuple[DnsName, ...] | None = None
    if built.dns is not None:
        server = built.dns.address
        events = cp_state.get("events", [])
        # asked like a node would: from a site host on the boot LAN, routed to BIND
        with NamespaceWorker(lab.ns(dns_asker(plan))) as worker:
            out = []
            for m in machines:
                address = next((n.get("ipv4") for n in (m.get("facts") or {}).get("nics", [])
                                if n.get("ipv4")), "")
                fqdn = f"{m['hostname']}.{plan.dns.zone if plan.dns else ''}."
                ptr = worker.call(lookup, server, dns.reversename.from_address(address)
                                  .to_text(), "PTR") if address and built.reverse_zones \
                    else None
                errors = tuple(str(e.get("data", {}).get("detail", "")) for e in events
                               if e.get("kind") == "dns.update" and e.get("subject") == m["mac"]
                               and not e.get("data", {}).get("ok"))
                out.append(DnsName(m["mac"], m["hostname"], address,
                                   worker.call(lookup, server, fqdn, "A") if address else (),
                                   ptr, errors))
        names_facts = tuple(out)
    clocks: tuple[NodeClock, ...] | None = None
    if "machines" in cp_state:
        source = plan.ntp.address.address(lab.address) if plan.ntp and plan.ntp.offered else ""
        registered = {e["subject"]: float(e["time"]) for e in cp_state.get("events", [])
                      if e.get("kind") == "node.registered"}
        found = (node_clock(m["mac"], m.get("facts") or {}, registered[m["mac"]], source)
                 for m in machines if m["mac"] in registered)
        clocks = tuple(c for c in found if c is not None)
    return SiteFacts(wan=wan, dns=names_facts, clocks=clocks, tls=_tls_hops(lab, plan),
                     notes=notes)


def dns_asker(plan: SitePlan) -> str:
    """The site host the DNS facts are asked from: the first site DHCP server's (on a
    boot segment, so the answer also proves the LAN reaches BIND through the site
    router), else the DNS server's own host."""
    if plan.dhcp_servers:
        return plan.dhcp_servers[0].host
    return plan.dns.host if plan.dns is not None else ""


def _json_lines(path: Path) -> list[dict[str, Any]]:
    out = []
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    out.append(event)
    return out


def _tls_hops(lab: Lab, plan: SitePlan) -> tuple[TlsHop, ...] | None:
    """Each Boot Proxy's hop to the Control Plane, as its own log tells it: a verified
    sync (``assignments_updated`` over https with a CA), or a refusal (``cp_tls_failed``
    with the reason). Hops cross the WAN when the proxy's Control Plane is in the cloud
    (a mixed site's standalone proxies talk to the site's own)."""
    if not plan.proxies:
        return None
    hops = []
    for proxy in plan.proxies:
        if proxy.kind == "dnsmasq":
            continue  # dnsmasq proxies get their MAC list from the harness, not the CP
        cp = plan.control_plane_of(proxy.cp_via.host)
        crossed = cp.placement == "cloud"
        scheme = "https" if cp.tls else "http"
        events = _json_lines(lab.reports_dir / "logs" / f"bootproxy-{proxy.name}.log")
        if not events:
            continue  # its log is not readable yet (a container's is copied at stop)
        refused = [e for e in events if e.get("event") == "cp_tls_failed"]
        synced = any(e.get("event") == "assignments_updated" for e in events)
        verified: bool | None = None
        reason = ""
        if refused:
            verified, reason = False, str(refused[-1].get("reason", ""))
        elif synced and scheme == "https":
            verified = True
        elif not synced:
            continue  # no exchange reached the Control Plane (it was unreachable)
        hops.append(TlsHop(f"proxy {proxy.name}", f"{scheme}://{proxy.cp_via}", crossed,
                           scheme, verified, reason,
                           expect_refusal=cp.tls_fault is not None))
    return tuple(hops)
