"""WAN-*, DNS-1, NTP-1: the site around the boot LAN, judged from lab state.

These rules read :class:`~harness.rules.site_facts.SiteFacts` (``RuleContext.site``):
the WAN router's flows, each Control Plane hop's TLS outcome, the site's DNS answers
and the nodes' clocks. A boot-LAN capture holds none of that; without the facts each
rule says why it was not applied, and "not applicable" is never read as "holds" (a
scenario naming one of these in ``expect.rules`` fails with "never applied").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TypeVar

from harness.rules.analysis import Analysis
from harness.rules.judge import Judge, check
from harness.rules.site_facts import SiteFacts

MAX_CLOCK_OFFSET_S = 1.0
NO_WAN = "this site has no WAN (the Control Plane is on site)"


T = TypeVar("T")


def _facts(an: Analysis, j: Judge, rule: str, missing: str,
           part: Callable[[SiteFacts], T | None], absent: str, empty: str = "") -> T | None:
    """The part of the site's facts ``rule`` reads, or None once the rule has said why it
    was not applied: no whole-site facts at all (``missing`` names what it would read),
    or none of that part (``absent``). A note the builder left for the rule is its reason
    too, even when the part is there; so is ``empty`` when the part is empty."""
    site = an.ctx.site
    if site is None:
        j.not_applicable(f"no whole-site facts in this run ({missing}); a boot-LAN capture "
                         "alone does not show them")
        return None
    if rule in site.notes:
        j.not_applicable(site.notes[rule])
    value = part(site)
    if value is None:
        if rule not in site.notes:
            j.not_applicable(absent)
        return None
    if empty and not value:
        j.not_applicable(empty)
    return value


@check("WAN-1", unit="flow")
def wan1(an: Analysis, j: Judge) -> None:
    """Only outbound TCP to the allowed ports (or the tunnel) crosses the WAN; nothing
    is opened from the Control Plane's side into the site."""
    wan = _facts(an, j, "WAN-1", "the WAN router's flows", lambda s: s.wan, NO_WAN)
    if wan is None:
        return
    if not any(f.packets for f in wan.flows):
        j.not_applicable("no flow crossed the WAN router in this run")
    ports = "/".join(str(p) for p in wan.allowed_ports)
    for f in wan.flows:
        if not f.packets:
            continue
        who = f" ({f.party})" if f.party else ""
        if f.direction == "in":
            j.fail(f"a connection was opened into the site from the Control Plane side: "
                   f"{f.src} -> {f.dst} {f.protocol}/{f.dport}, {f.packets} packet(s), "
                   f"{f.verdict} by the router; the site must need no inbound connection",
                   server=f.src)
        elif f.protocol != "tcp" or f.dport not in wan.allowed_ports:
            j.fail(f"site -> Control Plane flow {f.src}{who} -> {f.dst} {f.protocol}/{f.dport} "
                   f"({f.verdict}): only outbound TCP {ports} may cross the WAN",
                   client=f.src)
        elif wan.private and f.dst == wan.control_plane and f.path != "tunnel":
            j.fail(f"{f.src}{who} reached the Control Plane {f.dst}:{f.dport} outside the "
                   "private WAN; in hybrid mode that traffic must run in the tunnel",
                   client=f.src)
        else:
            j.checked(note=f"{f.path} tcp/{f.dport}")


@check("WAN-2", unit="item")
def wan2(an: Analysis, j: Judge) -> None:
    """The Control Plane sees only the NAT address; a WAN outage serves known machines
    from the last good state and refuses unknown ones."""
    found = _facts(an, j, "WAN-2", "NAT and outage observations",
                   lambda s: (s.wan, s.outage or ()) if s.wan else None, NO_WAN)
    if found is None:
        return
    wan, outage = found
    if not wan.seen_by_control_plane and not outage:
        j.not_applicable("the Control Plane logged no client and no machine booted during "
                         "a WAN outage")
    for addr in wan.seen_by_control_plane:
        if addr == wan.nat_address:
            j.checked(note=f"the Control Plane saw only {wan.nat_address}")
        else:
            j.fail(f"the Control Plane saw client address {addr}, not the NAT address "
                   f"{wan.nat_address}: a site host reached it without NAT", client=addr)
    for boot in outage:
        if boot.known and not boot.answered:
            j.fail(f"known machine {boot.mac} got no answer during the WAN outage: the proxy "
                   "must serve it from its last good state", client=boot.mac)
        elif not boot.known and boot.answered:
            j.fail(f"unknown machine {boot.mac} was answered during the WAN outage",
                   client=boot.mac)
        elif boot.known and not boot.ready_after:
            j.fail(f"known machine {boot.mac} was not Ready after the WAN came back",
                   client=boot.mac)
        else:
            j.checked(note="outage boots as the MAC filter says")


@check("WAN-3", unit="hop")
def wan3(an: Analysis, j: Judge) -> None:
    """Every Control Plane exchange across the WAN is TLS, verified against the given CA."""
    hops = _facts(an, j, "WAN-3", "each Control Plane hop's TLS outcome", lambda s: s.tls,
                  "no Control Plane hop reported its TLS outcome")
    if hops is None:
        return
    crossing = [h for h in hops if h.crossed_wan]
    if not crossing:
        j.not_applicable("no Control Plane hop crossed the WAN")
    for hop in crossing:
        if hop.scheme != "https":
            j.fail(f"{hop.client} talks to the Control Plane over {hop.scheme} across the WAN "
                   f"({hop.url}): it must be TLS", client=hop.client)
        elif hop.verified is None:
            j.fail(f"{hop.client} used {hop.url} but showed no certificate check: a client "
                   "must verify the Control Plane against its CA", client=hop.client)
        elif hop.expect_refusal and hop.verified:
            j.fail(f"{hop.client} accepted a certificate it had to refuse ({hop.url})",
                   client=hop.client)
        elif not hop.verified and not hop.refused_reason:
            j.fail(f"{hop.client} refused the Control Plane's certificate without saying why",
                   client=hop.client)
        elif not hop.verified and not hop.expect_refusal:
            j.fail(f"{hop.client} refused the Control Plane's certificate: "
                   f"{hop.refused_reason}", client=hop.client)
        else:
            j.checked(note="refused with a reason" if not hop.verified else "verified")


@check("DNS-1", unit="name")
def dns1(an: Analysis, j: Judge) -> None:
    """Each Ready node's name is unique and resolves (A, and PTR with a reverse zone)."""
    names = _facts(an, j, "DNS-1", "the site's DNS answers", lambda s: s.dns,
                   "this site has no DNS server in the lab",
                   empty="no node was Ready, so no name had to resolve")
    if names is None:
        return
    owners: dict[str, list[str]] = defaultdict(list)
    for name in names:
        owners[name.hostname].append(name.mac)
    for hostname, macs in owners.items():
        if len(macs) > 1:
            j.fail(f"hostname {hostname!r} is used by {len(macs)} nodes ({', '.join(macs)}): "
                   "names must be unique in the site")
    for name in names:
        errors = f"; updates reported: {'; '.join(name.update_errors)}" \
            if name.update_errors else ""
        if name.resolved != (name.address,):
            j.fail(f"{name.hostname} ({name.mac}) resolves to "
                   f"{list(name.resolved) or 'nothing'}, not {name.address}{errors}",
                   client=name.mac)
        elif not name.reverse_names_it:
            j.fail(f"{name.address} has PTR {list(name.ptr or ()) or 'nothing'}, not "
                   f"{name.hostname}{errors}", client=name.mac)
        else:
            j.checked()


@check("NTP-1", unit="node")
def ntp1(an: Analysis, j: Judge) -> None:
    """A Ready node's clock is within 1 s of the site's time source."""
    clocks = _facts(an, j, "NTP-1", "the nodes' clocks", lambda s: s.clocks,
                    "no node clock was reported",
                    empty="no node was Ready, so no clock had to agree")
    if clocks is None:
        return
    for clock in clocks:
        source = f" (synced from {clock.source})" if clock.source else " (no NTP offered)"
        if clock.beyond(MAX_CLOCK_OFFSET_S):
            j.fail(f"{clock.mac}'s clock is {clock.off_by()} off the site's time"
                   f"{source}: it must be within {MAX_CLOCK_OFFSET_S:g} s", client=clock.mac)
        else:
            j.checked()
