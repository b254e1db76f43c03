"""TIME-*: how fast and how persistently a proxy answers."""

from __future__ import annotations

from collections import defaultdict

from harness.capture.events import DhcpEvent
from harness.rules.analysis import Analysis
from harness.rules.checks_ack4011 import answered_4011
from harness.rules.judge import Judge, between, check


def _offer_pairs(an: Analysis) -> list[tuple[DhcpEvent, DhcpEvent]]:
    """(DISCOVER, proxy OFFER) pairs, the OFFER matched to the latest DISCOVER."""
    out = []
    for o in an.proxy_offers():
        q = an.request_of(o)
        if q is not None and q.msg_type == "DISCOVER":
            out.append((q, o))
    return out


@check("TIME-1")
def time1(an: Analysis, j: Judge) -> None:
    """Every DISCOVER of a client a proxy answers (or serves) gets its own OFFER.

    A proxy that never answers a client it serves is SITE-3's finding.
    """
    j.not_applicable("no client was offered boot service by a proxy")
    offered: dict[tuple[str, str], list[DhcpEvent]] = defaultdict(list)
    for o in an.proxy_offers():
        offered[(an.proxy_of(o), o.chaddr)].append(o)
    for (proxy, mac), offers in offered.items():
        if an.served(proxy, mac) is False:
            continue  # SILENT-5 judges offers to MACs it must not serve
        discovers: list[DhcpEvent] = []
        for q in an.discovers_of(mac):
            if not an.ctx.accepts_vendor(q.vendor_class):
                continue
            if an.assigned_after(mac, q.time):
                continue  # sent before the Control Plane assigned it: nothing was owed
            # a relay with several helper addresses sends one unicast copy per server:
            # only broadcasts and copies addressed to this proxy concern it
            if q.dst_ip not in ("255.255.255.255", proxy) and q.dst_mac != "ff:ff:ff:ff:ff:ff":
                continue
            if discovers and discovers[-1].xid == q.xid and q.time - discovers[-1].time < 0.5:
                continue  # the same DISCOVER seen twice (two taps, relay copies)
            discovers.append(q)
        for i, d in enumerate(discovers):
            until = discovers[i + 1].time if i + 1 < len(discovers) else d.time + an.scaled(4.0)
            if any(d.time < o.time <= until and o.xid == d.xid for o in offers):
                j.checked()
            elif an.end_time < d.time + an.scaled(1.0):
                continue  # the capture ended before an answer was due
            else:
                j.fail(
                    f"{proxy} did not answer DISCOVER xid {d.xid:#010x} (secs {d.secs}) from "
                    f"{mac} although it answered this client before; retransmissions must be "
                    "answered",
                    [d.frame],
                    mac,
                    proxy,
                )


def _within_a_second(an: Analysis, j: Judge, q: DhcpEvent, r: DhcpEvent, what: str,
                     after: str, why: str = "") -> None:
    """Reply ``r`` came within 1 s (scaled for a slow machine) of request ``q``; the
    finding reads "<what> 1.234 s <after> (limit 1.0 s)<why>"."""
    limit = an.scaled(1.0)
    delay = r.time - q.time
    j.expect(delay <= limit, f"{what} {delay:.3f} s {after} (limit {limit:.1f} s){why}",
             *between(q, r))


@check("TIME-2")
def time2(an: Analysis, j: Judge) -> None:
    """Proxy OFFER within 1 s of its DISCOVER."""
    j.not_applicable("no proxy OFFER answering a DISCOVER")
    for q, o in _offer_pairs(an):
        _within_a_second(an, j, q, o, "OFFER came", "after the DISCOVER",
                         "; iPXE waits only ~2 s for a proxy offer")


@check("TIME-3")
def time3(an: Analysis, j: Judge) -> None:
    """4011 ACK within 1 s of the request it answers."""
    j.not_applicable("no answered 4011 request")
    for q, a in answered_4011(an):
        _within_a_second(an, j, q, a, "4011 ACK came", "after the request")


@check("TIME-4")
def time4(an: Analysis, j: Judge) -> None:
    """Report the proxy's reply delays (a configured delay is allowed)."""
    j.not_applicable("no proxy OFFER answering a DISCOVER")
    delays = [o.time - q.time for q, o in _offer_pairs(an)]
    if delays:
        j.checked(len(delays), f"OFFER delay min {min(delays):.3f} s, max {max(delays):.3f} s")
