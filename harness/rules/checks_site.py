"""SITE-*: the segment as a whole, with several DHCP servers on it."""

from __future__ import annotations

from collections import defaultdict

from harness.rules import l2
from harness.rules.analysis import ZERO, Analysis
from harness.rules.judge import Judge, check


def _proxy_offer_servers(an: Analysis) -> dict[str, dict[str, list[int]]]:
    """Per client MAC, the servers that sent it a ProxyDHCP offer (yiaddr 0, 60 PXE)."""
    out: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in an.replies:
        if r.msg_type == "OFFER" and r.yiaddr == ZERO and an.ctx.accepts_vendor(r.vendor_class):
            out[r.chaddr][an.server_of(r)].append(r.frame)
    return out


@check("SITE-1", unit="client")
def site1(an: Analysis, j: Judge) -> None:
    """At most one ProxyDHCP answers each MAC."""
    j.not_applicable("no ProxyDHCP offer in the capture")
    for mac, servers in _proxy_offer_servers(an).items():
        if len(servers) > 1:
            frames = [f for fs in servers.values() for f in fs]
            j.fail(
                f"{len(servers)} ProxyDHCP servers answer {mac}: {sorted(servers)}; Boot "
                "Proxies sharing a segment must not serve the same machine",
                frames,
                mac,
            )
        else:
            j.checked()


@check("SITE-2", unit="server")
def site2(an: Analysis, j: Judge) -> None:
    """An address server does not claim to be a PXE boot server unless it is one."""
    j.not_applicable("no site DHCP server seen (no OFFER with an address)")
    for server in sorted(an.address_servers):
        offers = [
            r
            for r in an.replies
            if an.server_of(r) == server and r.msg_type == "OFFER" and r.yiaddr != ZERO
        ]
        if not offers:
            continue
        pxe = [r for r in offers if (r.vendor_class or "").startswith("PXEClient")]
        if not pxe:
            j.checked()
            continue
        boots = any(r.file or r.bootfile_opt or (r.pxe and r.pxe.suboptions)
                    for r in pxe) or any(
            r.src_ip == server and (r.sport == 4011 or r.dport == 4011) for r in an.replies
        )
        if boots:
            j.checked()
        else:
            j.fail(
                f"site DHCP server {server} sends option 60 PXEClient without boot data and "
                "does not answer 4011: clients send their boot request there (PXE-E55)",
                [r.frame for r in pxe],
                None,
                server,
            )


@check("SITE-3", unit="client")
def site3(an: Analysis, j: Judge) -> None:
    """Each PXE client gets an address offer and, if served, a proxy offer."""
    j.not_applicable("no PXE DISCOVER in the capture")
    proxy_offers = _proxy_offer_servers(an)
    first: dict[str, float] = {}
    frames: dict[str, int] = {}
    relayed: set[str] = set()
    for q in an.discovers():
        if not an.ctx.accepts_vendor(q.vendor_class):
            continue
        first.setdefault(q.chaddr, q.time)
        frames.setdefault(q.chaddr, q.frame)
        if q.giaddr != ZERO:
            relayed.add(q.chaddr)
    window = an.scaled(4.0)
    for mac, t0 in first.items():
        got_addr = any(
            r.yiaddr != ZERO and r.msg_type == "OFFER" for r in an.replies_of(mac)
        )
        served = an.served_by_any(mac)  # None: no MAC filter known, proxy half not judged
        got_proxy = mac in proxy_offers
        missing = []
        if not got_addr and mac not in relayed and an.end_time - t0 >= window:
            missing.append("no address offer (is a site DHCP server on this segment?)")
        if served and not got_proxy and an.end_time - t0 >= window:
            missing.append("no ProxyDHCP offer although a Boot Proxy serves it"
                           + _relay_skips_proxy(an, mac))
        if missing:
            j.fail("; ".join(missing), [frames[mac]], mac)
        else:
            j.checked()


def _relay_skips_proxy(an: Analysis, mac: str) -> str:
    """Why a served client behind a relay got no proxy offer, when this capture shows it:
    the relay sent its DISCOVERs on (to the site DHCP server) but never to a Boot Proxy
    serving it — a helper address list without the Boot Proxy."""
    relayed = [q for q in an.discovers_of(mac) if q.giaddr != ZERO]
    if not relayed:
        return ""
    serving = sorted(ip for ip, macs in an.ctx.serves.items() if mac in macs)
    sent_to = sorted({q.dst_ip for q in relayed})
    if set(serving) & set(sent_to):
        return ""
    giaddrs = ", ".join(sorted({q.giaddr for q in relayed}))
    return (f": the relay does not forward to the Boot Proxy — relay {giaddrs} sent this "
            f"client's DISCOVERs to {', '.join(sent_to)} only, never to "
            f"{' or '.join(serving)}, which serves it (add it to the relay's helper "
            "addresses)")


def _domains_of(an: Analysis, macs: frozenset[str]) -> dict[str, set[str]]:
    """The L2 domains ``macs`` were heard in: the run's map (every capture) where it
    knows a MAC, else this capture alone ("this segment", or behind a relay's giaddr)."""
    known = an.ctx.l2_domains
    here = l2.heard_directly(an.capture)
    behind = l2.relayed_in(an.capture)
    out: dict[str, set[str]] = defaultdict(set)
    for mac in macs:
        segments = [seg for seg, heard in known.items() if mac in heard]
        if not segments:
            segments = ["this segment"] if mac in here else []
            segments += [f"behind relay {g}" for g, ms in behind.items() if mac in ms]
        for seg in segments:
            out[seg].add(mac)
    return out


@check("SITE-4", unit="cluster")
def site4(an: Analysis, j: Judge) -> None:
    """All nodes of one cluster are in one layer-2 domain (the guide's assumption)."""
    if not an.ctx.clusters:
        j.not_applicable("no cluster membership known (which MACs form which cluster)")
        return
    j.not_applicable("no node of a known cluster sent a DHCP request in this capture")
    seen_here = {e.chaddr for e in an.requests}
    for cluster, members in sorted(an.ctx.clusters.items()):
        if not members & seen_here:
            continue  # judged where its nodes are heard
        domains = _domains_of(an, members)
        if len(domains) <= 1:
            j.checked()
            continue
        where = "; ".join(f"{seg}: {', '.join(sorted(macs))}"
                          for seg, macs in sorted(domains.items()))
        frames = [e.frame for e in an.requests if e.chaddr in members][:8]
        j.fail(f"cluster {cluster} is split across {len(domains)} layer-2 domains "
               f"({', '.join(sorted(domains))}) — {where}; all nodes of one cluster must "
               "be in the same layer-2 domain", frames)
