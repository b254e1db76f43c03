"""site-check requirements 1 to 3: the site DHCP server, ProxyDHCP reachability, rogue responders.

``check_dhcp`` sends one plain DISCOVER (what an installed OS sends) and lists every
server that offers an address; the first offer's DNS, NTP, domain and routers become
the facts later checks use, because that is what a PXE-booted node will get.
``check_proxydhcp`` sends a PXE DISCOVER as each probe MAC (what a UEFI ROM sends) and
tells site offers from ProxyDHCP offers, so a Boot Proxy that is unreachable, a reply
lost on the way, two proxies answering one node and a site server that hands out
``PXEClient`` are all caught before the first machine is racked. Nothing here ever sends
a REQUEST: no lease is taken. ``--passive`` sends nothing and reports what it overheard.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from harness.sitecheck.dhcp_exchange import Exchange, Probe, Seen, run_exchange
from harness.sitecheck.dhcp_link import FrameLink, PacketLink
from harness.sitecheck.dhcp_wire import (
    ACK,
    BOOTREPLY,
    BOOTREQUEST,
    DISCOVER,
    OFFER,
    DhcpMessage,
    plain_discover_frame,
    pxe_discover_frame,
)
from harness.sitecheck.model import CheckResult, CheckVerdict, SiteContext

ZERO = "0.0.0.0"
SNOOPING_HINT = ("Run with --serve on the Boot Proxy host to tell these apart. Also check "
                 "that the MAC is assigned (Control Plane) to a cluster this Boot Proxy "
                 "serves, that a DHCP helper/relay forwards to the Boot Proxy when it is on "
                 "another subnet, and that a snooping switch trusts the Boot Proxy's port.")

Clock = Callable[[], float]


def _xid() -> int:
    return random.SystemRandom().getrandbits(32) or 1


def is_address_offer(msg: DhcpMessage) -> bool:
    """An OFFER that hands out an address (a site DHCP server's)."""
    return msg.op == BOOTREPLY and msg.msg_type == OFFER and msg.yiaddr != ZERO


def is_proxy_offer(msg: DhcpMessage) -> bool:
    """A ProxyDHCP offer: option 60 PXEClient and either no address (yiaddr 0) or boot
    data (a combined DHCP + PXE server also counts as a PXE responder)."""
    return (msg.op == BOOTREPLY and msg.msg_type == OFFER and msg.pxeclient
            and (msg.yiaddr == ZERO or msg.has_boot_data))


def _how(msg: DhcpMessage) -> str:
    return f"through relay giaddr {msg.giaddr}" if msg.relayed else "directly"


def describe(msg: DhcpMessage) -> str:
    """One evidence line for a reply: who sent it, how it came, what it offered."""
    parts = [f"server {msg.server} (frame from {msg.src_ip} {msg.src_mac}, {_how(msg)})"]
    if msg.yiaddr != ZERO:
        mask = msg.ips(1)
        parts.append(f"address {msg.yiaddr}" + (f"/{mask[0]}" if mask else ""))
    for code, label in ((3, "router"), (6, "DNS"), (42, "NTP")):
        if msg.ips(code):
            parts.append(f"{label} {', '.join(msg.ips(code))}")
    for code, label in ((15, "domain"), (12, "hostname")):
        if msg.text(code):
            parts.append(f"{label} {msg.text(code)}")
    if msg.lease_seconds() is not None:
        parts.append(f"lease {msg.lease_seconds()} s")
    if msg.vendor_class is not None:
        parts.append(f"option 60 {msg.vendor_class!r}")
    if msg.boot_file:
        parts.append(f"boot file {msg.boot_file!r}")
    if msg.siaddr != ZERO and (msg.yiaddr == ZERO or msg.has_boot_data):
        parts.append(f"next server {msg.siaddr}")
    if msg.pxe_summary():
        parts.append(msg.pxe_summary())
    return "; ".join(parts)


def responder(msg: DhcpMessage, role: str) -> dict[str, Any]:
    """The responder-map entry (render.py) for one reply: who answered which MAC, how."""
    return {"ip": msg.server, "role": role, "answered": [msg.chaddr], "src_mac": msg.src_mac,
            "via": msg.giaddr if msg.relayed else None, "pxeclient": msg.pxeclient and
            role == "dhcp" and not msg.has_boot_data, "boot_file": msg.boot_file or None}


def _by_server(seen: list[Seen]) -> dict[str, Seen]:
    """The first reply of each distinct server, in arrival order."""
    out: dict[str, Seen] = {}
    for s in seen:
        out.setdefault(s.message.server, s)
    return out


def _run(ctx: SiteContext, probes: list[Probe], link: FrameLink | None, clock: Clock,
         answered: Callable[[Probe, list[Seen]], bool] | None, promiscuous: bool) -> Exchange:
    opened = link is None
    use = link if link is not None else PacketLink(ctx.options.iface, promiscuous=promiscuous)
    try:
        return run_exchange(use, probes, ctx.options.listen_seconds, answered=answered,
                            clock=clock)
    finally:
        if opened:
            use.close()


def _sent(probe: Probe, kind: str, iface: str) -> str:
    tries = len(probe.sent_at)
    return (f"sent {tries} {kind} DISCOVER{'s' if tries != 1 else ''} as {probe.mac} on "
            f"{iface} (xid 0x{probe.xid:08x}, broadcast flag set)")


# -- requirement 1: the site DHCP server -------------------------------------------------
def check_dhcp(ctx: SiteContext, *, link: FrameLink | None = None,
               clock: Clock = time.monotonic) -> list[CheckResult]:
    """Plain DISCOVER: PASS one server offers, WARN several do, FAIL none; also flags a
    site server whose plain offer carries ``PXEClient`` (SITE-2). Fills ``ctx.facts``."""
    if ctx.options.passive:
        return _passive_dhcp(ctx, _run(ctx, [], link, clock, None, True))
    mac = ctx.iface_mac
    xid = _xid()
    probe = Probe(mac, xid, plain_discover_frame(mac, xid))
    ex = _run(ctx, [probe], link, clock,
              lambda p, r: any(is_address_offer(s.message) for s in r), False)
    replies = ex.replies_to(probe)
    offers = [s for s in replies if is_address_offer(s.message)]
    servers = _by_server(offers)
    evidence = [_sent(probe, "plain", ctx.options.iface)]
    evidence += [describe(s.message) + f" — {s.at - probe.sent_at[0]:.2f} s"
                 for s in servers.values()]
    evidence += [f"also: {_kind(s.message)} from {s.message.server}"
                 for s in replies if not is_address_offer(s.message)]
    evidence += ex.malformed_evidence()
    data: dict[str, Any] = {"servers": list(servers),
                            "responders": [responder(s.message, "dhcp")
                                           for s in servers.values()]}
    results: list[CheckResult] = []
    if not servers:
        evidence.append(_overheard(ex))
        results.append(CheckResult(
            "dhcp", "dhcp.offers", CheckVerdict.FAIL,
            f"no DHCP server answered a DISCOVER within {ctx.options.listen_seconds:g} s",
            evidence, hint="KubeFlex machines need a working DHCP server on this L2 network: "
            "run one here, or have the router relay DHCP (ip helper-address) to one; check "
            "that this interface is on the machines' VLAN", data=data))
    else:
        _learn(ctx, list(servers.values()))
        first = next(iter(servers.values())).message
        if len(servers) == 1:
            results.append(CheckResult(
                "dhcp", "dhcp.offers", CheckVerdict.PASS,
                f"DHCP server {first.server} offered {first.yiaddr} ({_how(first)})",
                evidence, data=data))
        else:
            results.append(CheckResult(
                "dhcp", "dhcp.offers", CheckVerdict.WARN,
                f"{len(servers)} DHCP servers offered addresses: {', '.join(servers)}",
                evidence, hint="two DHCP servers on one LAN hand out conflicting leases "
                "unless their ranges are split on purpose: keep one", data=data))
    results.append(_site_pxeclient(list(servers.values())))
    stray = [s for s in replies if is_proxy_offer(s.message) and s.message.yiaddr == ZERO]
    if stray:
        names = sorted({s.message.server for s in stray})
        results.append(CheckResult(
            "responders", "responders.plain_discover", CheckVerdict.WARN,
            f"ProxyDHCP {', '.join(names)} answered a DISCOVER without PXE options",
            [describe(s.message) for s in stray],
            hint="a ProxyDHCP must answer only PXE clients (option 60 PXEClient, SILENT-1): "
            "installed nodes renewing their leases would get boot offers too",
            data={"responders": [responder(s.message, "proxy") for s in stray]}))
    return results


def _kind(msg: DhcpMessage) -> str:
    names = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 5: "ACK", 6: "NAK"}
    kind = names.get(msg.msg_type or 0, f"type {msg.msg_type}")
    return f"ProxyDHCP {kind}" if msg.pxeclient and msg.yiaddr == ZERO else kind


def _learn(ctx: SiteContext, offers: list[Seen]) -> None:
    """What a PXE-booted node would be told: the first offer's DNS, NTP, domain, routers."""
    first = offers[0].message
    facts = ctx.facts
    facts.dns_servers = first.ips(6)
    facts.ntp_servers = first.ips(42)
    facts.domain = first.text(15) or None
    facts.routers = first.ips(3)
    facts.offered_address = first.yiaddr
    facts.dhcp_servers = [s.message.server for s in offers]


def _site_pxeclient(offers: list[Seen]) -> CheckResult:
    name = "responders.site_pxeclient"
    if not offers:
        return CheckResult("responders", name, CheckVerdict.SKIP,
                           "no site DHCP offer to inspect for option 60")
    bad = [s.message for s in offers if s.message.pxeclient]
    resp = [responder(s.message, "dhcp") for s in offers]
    if not bad:
        return CheckResult("responders", name, CheckVerdict.PASS,
                           "the site DHCP server does not send option 60 PXEClient",
                           data={"responders": resp})
    plain = [m for m in bad if not m.has_boot_data]
    if plain:
        return CheckResult(
            "responders", name, CheckVerdict.FAIL,
            f"site DHCP server {', '.join(m.server for m in plain)} sends option 60 "
            "'PXEClient' in its address offers", [describe(m) for m in bad],
            hint="remove option 60 (vendor class PXEClient) from the site DHCP server: PXE "
            "clients then send their boot request to it instead of the Boot Proxy and fail "
            "(PXE-E55; rule SITE-2)", data={"responders": resp})
    return CheckResult(
        "responders", name, CheckVerdict.WARN,
        f"site DHCP server {', '.join(m.server for m in bad)} is itself a PXE boot server "
        f"(boot file {bad[0].boot_file or bad[0].pxe_summary()!r})", [describe(m) for m in bad],
        hint="it will compete with the Boot Proxy for the KubeFlex machines: scope its PXE "
        "options away from them", data={"responders": resp})


# -- requirements 2 and 3: ProxyDHCP and conflicts ----------------------------------------
def check_proxydhcp(ctx: SiteContext, *, link: FrameLink | None = None,
                    clock: Clock = time.monotonic) -> list[CheckResult]:
    """PXE DISCOVER per probe MAC: PASS when a ProxyDHCP offer comes back (directly or via a
    relay), FAIL when none does (with the snooping diagnosis), FAIL responders.conflict when
    two servers offer boot to one MAC."""
    if ctx.options.passive:
        return _passive_proxy(ctx, _run(ctx, [], link, clock, None, True))
    macs = list(dict.fromkeys(ctx.options.probe_macs or [ctx.iface_mac]))
    xids: set[int] = set()
    probes = []
    for mac in macs:
        xid = _xid()
        while xid in xids:
            xid = _xid()
        xids.add(xid)
        probes.append(Probe(mac, xid, pxe_discover_frame(mac, xid)))
    promiscuous = any(m != ctx.iface_mac for m in macs)
    ex = _run(ctx, probes, link, clock,
              lambda p, r: any(is_proxy_offer(s.message) for s in r), promiscuous)
    results = [_offer_result(ctx, probe, ex) for probe in probes]
    results.append(_conflicts({p.mac: [s for s in ex.replies_to(p) if is_proxy_offer(s.message)]
                               for p in probes}, probed=True))
    return results


def _offer_result(ctx: SiteContext, probe: Probe, ex: Exchange) -> CheckResult:
    replies = ex.replies_to(probe)
    proxies = _by_server([s for s in replies if is_proxy_offer(s.message)])
    sites = _by_server([s for s in replies if is_address_offer(s.message)
                        and not is_proxy_offer(s.message)])
    evidence = [_sent(probe, "PXE", ctx.options.iface)]
    evidence += [f"ProxyDHCP offer: {describe(s.message)} — {_delay(probe, s):.2f} s"
                 for s in proxies.values()]
    evidence += [f"site DHCP offer: {describe(s.message)}" for s in sites.values()]
    evidence += ex.malformed_evidence()
    data: dict[str, Any] = {
        "mac": probe.mac, "proxies": list(proxies),
        "responders": [responder(s.message, "proxy") for s in proxies.values()]
        + [responder(s.message, "dhcp") for s in sites.values()]}
    if len(proxies) == 1:
        ip, seen = next(iter(proxies.items()))
        return CheckResult("proxydhcp", "proxydhcp.offer", CheckVerdict.PASS,
                           f"Boot Proxy {ip} answered {probe.mac} {_how(seen.message)}",
                           evidence, data=data)
    if proxies:
        text = ", ".join(f"{ip} ({_how(s.message)})" for ip, s in proxies.items())
        return CheckResult("proxydhcp", "proxydhcp.offer", CheckVerdict.PASS,
                           f"Boot Proxies {text} answered {probe.mac}", evidence, data=data)
    relayed = [s.message for s in sites.values() if s.message.relayed]
    if relayed:
        return _relay_skips_proxy(probe, relayed[0], [*evidence, _overheard(ex)], data)
    if not sites:
        evidence.append("no site DHCP offer came back either")
    evidence.append(_overheard(ex))
    return CheckResult(
        "proxydhcp", "proxydhcp.offer", CheckVerdict.FAIL,
        f"nothing answered a PXE DISCOVER for {probe.mac}; or a reply was dropped on the way "
        "(DHCP snooping?)", evidence, hint=SNOOPING_HINT, data=data)


def _relay_skips_proxy(probe: Probe, site_offer: DhcpMessage, evidence: list[str],
                       data: dict[str, Any]) -> CheckResult:
    """A relayed segment where the relay carried the PXE DISCOVER to the site DHCP server
    (its offer came back through the relay) and no ProxyDHCP offer came back the same way.
    A snooping switch cannot be the cause here: both replies would enter through the
    relay's port. The relay's helper list lacks the Boot Proxy — or no Boot Proxy serves
    this MAC, which only the Control Plane can tell."""
    evidence.append(f"the site DHCP server {site_offer.server}'s offer came back through "
                    f"relay giaddr {site_offer.giaddr}; no ProxyDHCP offer did")
    return CheckResult(
        "proxydhcp", "proxydhcp.offer", CheckVerdict.FAIL,
        f"the relay does not forward to the Boot Proxy: relay {site_offer.giaddr} carried "
        f"the PXE DISCOVER for {probe.mac} to site DHCP server {site_offer.server}, but no "
        "ProxyDHCP offer came back through it", evidence,
        hint="add the Boot Proxy's address to the relay's DHCP helper list (ip "
        "helper-address, dhcrelay's servers) beside the site DHCP server; if it is "
        f"already there, check that {probe.mac} is assigned (Control Plane) to a cluster "
        "that Boot Proxy serves", data=data)


def _delay(probe: Probe, seen: Seen) -> float:
    before = [t for t in probe.sent_at if t <= seen.at]
    return seen.at - (before[-1] if before else probe.sent_at[0])


def _conflicts(proxy_offers: dict[str, list[Seen]], *, probed: bool) -> CheckResult:
    name = "responders.conflict"
    clashes = {mac: _by_server(seen) for mac, seen in proxy_offers.items()}
    clashes = {mac: servers for mac, servers in clashes.items() if len(servers) > 1}
    answered = sum(1 for seen in proxy_offers.values() if seen)
    if clashes:
        evidence = []
        resp = []
        for mac, servers in clashes.items():
            evidence.append(f"{mac} was offered boot by {len(servers)} servers:")
            for s in servers.values():
                evidence.append(f"  {describe(s.message)}")
                resp.append(responder(s.message, "proxy"))
        first_mac, first = next(iter(clashes.items()))
        return CheckResult(
            "responders", name, CheckVerdict.FAIL,
            f"{len(first)} ProxyDHCP servers answered {first_mac}: {' and '.join(first)}"
            + (f" (and {len(clashes) - 1} more MACs)" if len(clashes) > 1 else ""), evidence,
            hint="Boot Proxies that share a LAN must never answer the same node (SITE-1): "
            "assign each machine's cluster to one Boot Proxy in the Control Plane, or stop "
            "the other PXE server", data={"macs": sorted(clashes), "responders": resp})
    if not probed and not answered:
        return CheckResult("responders", name, CheckVerdict.SKIP,
                           "no ProxyDHCP offer overheard: nothing to compare")
    return CheckResult("responders", name, CheckVerdict.PASS,
                       f"no MAC was answered by more than one ProxyDHCP ({answered} of "
                       f"{len(proxy_offers)} answered by one)")


# -- passive ------------------------------------------------------------------------------
def _overheard(ex: Exchange) -> str:
    """One line on what else was on the wire while we listened."""
    kinds: dict[str, int] = {}
    for s in ex.other:
        key = ("PXE " if s.message.pxeclient else "") + _kind(s.message)
        kinds[key] = kinds.get(key, 0) + 1
    if not kinds:
        return "nothing else DHCP was heard on this interface meanwhile"
    return "also heard: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))


def _passive_dhcp(ctx: SiteContext, ex: Exchange) -> list[CheckResult]:
    seconds = ctx.options.listen_seconds
    offers = [s for s in ex.other if s.message.op == BOOTREPLY and s.message.yiaddr != ZERO
              and s.message.msg_type in (OFFER, ACK) and not is_proxy_offer(s.message)]
    servers = _by_server(offers)
    evidence = [f"listened {seconds:g} s on {ctx.options.iface}, sent nothing", _overheard(ex)]
    evidence += [describe(s.message) + f" (to {s.message.chaddr})" for s in servers.values()]
    evidence += ex.malformed_evidence()
    resp = [responder(s.message, "dhcp") for s in servers.values()]
    if not servers:
        return [CheckResult("dhcp", "dhcp.offers", CheckVerdict.SKIP,
                            f"passive: no DHCP offer seen in {seconds:g} s", evidence,
                            hint="listen longer (--listen) while a machine boots, or drop "
                            "--passive")]
    _learn(ctx, list(servers.values()))
    verdict = CheckVerdict.PASS if len(servers) == 1 else CheckVerdict.WARN
    return [CheckResult("dhcp", "dhcp.offers", verdict,
                        f"passive: DHCP server {', '.join(servers)} seen handing out addresses",
                        evidence, data={"servers": list(servers), "responders": resp}),
            _site_pxeclient(list(servers.values()))]


def _passive_proxy(ctx: SiteContext, ex: Exchange) -> list[CheckResult]:
    seconds = ctx.options.listen_seconds
    asked = sorted({s.message.chaddr for s in ex.other if s.message.op == BOOTREQUEST
                    and s.message.msg_type == DISCOVER and s.message.pxeclient})
    offers = [s for s in ex.other if is_proxy_offer(s.message)]
    by_mac: dict[str, list[Seen]] = {}
    for s in offers:
        by_mac.setdefault(s.message.chaddr, []).append(s)
    evidence = [f"listened {seconds:g} s on {ctx.options.iface}, sent nothing", _overheard(ex)]
    if asked:
        evidence.append(f"PXE DISCOVERs from {', '.join(asked)}")
    evidence += [f"ProxyDHCP offer to {s.message.chaddr}: {describe(s.message)}"
                 for s in offers]
    evidence += ex.malformed_evidence()
    resp = [responder(s.message, "proxy") for s in offers]
    if offers:
        servers = sorted({s.message.server for s in offers})
        result = CheckResult("proxydhcp", "proxydhcp.offer", CheckVerdict.PASS,
                             f"passive: ProxyDHCP {', '.join(servers)} seen answering "
                             f"{', '.join(sorted(by_mac))}", evidence,
                             data={"responders": resp})
    elif asked:
        result = CheckResult("proxydhcp", "proxydhcp.offer", CheckVerdict.WARN,
                             f"passive: PXE clients asked ({', '.join(asked)}) but no ProxyDHCP "
                             "offer was seen", evidence, hint=SNOOPING_HINT)
    else:
        result = CheckResult("proxydhcp", "proxydhcp.offer", CheckVerdict.SKIP,
                             f"passive: no PXE traffic seen in {seconds:g} s", evidence,
                             hint="power on a machine while listening, or drop --passive")
    return [result, _conflicts(by_mac, probed=False)]
