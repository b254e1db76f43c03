"""SILENT-*: what a Boot Proxy must never send."""

from __future__ import annotations

from harness.capture.events import DhcpEvent
from harness.rules.analysis import ZERO, Analysis
from harness.rules.judge import Judge, between, check


def _proxies_known(an: Analysis, j: Judge) -> bool:
    """Whether the capture has a proxy to judge; when not, the rule says why it could not
    apply (a silence rule cannot tell a proxy's answer from the site server's)."""
    if not an.proxies:
        j.not_applicable("no proxy in the capture (none declared with --proxy, none inferred)")
    return bool(an.proxies)


@check("SILENT-1")
def silent1(an: Analysis, j: Judge) -> None:
    """No answer to DISCOVERs/REQUESTs of clients that are not PXE/HTTP boot clients."""
    j.not_applicable("no request from a non-PXE client in the capture")
    answered: set[int] = set()
    for r in an.proxy_replies():
        q = an.request_of(r)
        if q is None or q.msg_type in ("INFORM", "RELEASE", "DECLINE"):
            continue  # answering these at all is SILENT-2's finding
        if not an.ctx.accepts_vendor(q.vendor_class):
            answered.add(q.frame)
            j.fail(
                f"answered a client whose option 60 is {q.vendor_class!r}, not a PXE/HTTP "
                "boot client; this disturbs ordinary DHCP clients",
                *between(q, r),
            )
    for q in an.requests:
        if not an.ctx.accepts_vendor(q.vendor_class) and q.frame not in answered:
            j.checked()


def _asked(q: DhcpEvent) -> str:
    """What an address REQUEST asked for, in words."""
    if q.requested_ip:
        return f"requested {q.requested_ip}"
    return f"renewing {q.ciaddr}" if q.ciaddr != ZERO else "no address named"


@check("SILENT-2")
def silent2(an: Analysis, j: Judge) -> None:
    """No ACK/NAK on 67 to address requests; no answers to INFORM/RELEASE/DECLINE."""
    j.not_applicable("no REQUEST, INFORM, RELEASE or DECLINE reached a proxy's segment")
    if not _proxies_known(an, j):
        return
    for ex in an.exchanges:
        q = ex.request
        if ex.to_4011 or q.msg_type not in ("REQUEST", "INFORM", "RELEASE", "DECLINE"):
            continue
        boot_item = q.pxe is not None and q.pxe.get(71) is not None
        for r in ex.replies:
            if not an.is_proxy(an.proxy_of(r)):
                continue
            if q.msg_type != "REQUEST":
                j.fail(
                    f"proxy answered a {q.msg_type} with {r.msg_type}; it must stay silent",
                    *between(q, r),
                )
            elif r.msg_type in ("ACK", "NAK") and not boot_item:
                j.fail(
                    f"proxy sent DHCP{r.msg_type} on port {r.sport} to an address REQUEST "
                    f"({_asked(q)}); only the site DHCP server may, or the "
                    "client loses its lease",
                    *between(q, r),
                )
        if not boot_item or q.msg_type != "REQUEST":
            j.checked()


@check("SILENT-3")
def silent3(an: Analysis, j: Judge) -> None:
    """No answer to a REQUEST whose option 54 names another server — on port 67 (the
    client accepting the site server's address offer) as on 4011.

    An ACK on 67 to such a REQUEST also fails SILENT-2: CONFORMANCE.md judges each rule
    on its own, so one reply can break both.
    """
    j.not_applicable("no REQUEST naming a server in option 54")
    if not _proxies_known(an, j):
        return
    for ex in an.exchanges:
        q = ex.request
        if q.msg_type != "REQUEST" or q.server_id is None:
            continue
        for r in ex.replies:
            if r.msg_type == "OFFER":
                continue  # answers the DISCOVER of this xid, only late (RFC 2131 §4.3.1)
            if an.is_proxy(an.proxy_of(r)) and q.server_id not in (r.src_ip, an.server_of(r)):
                j.fail(
                    f"answered with DHCP{r.msg_type} on port {r.sport} a REQUEST addressed "
                    f"(option 54) to {q.server_id}: that request was for another server",
                    *between(q, r),
                )
        j.checked()


@check("SILENT-4")
def silent4(an: Analysis, j: Judge) -> None:
    """Non-zero yiaddr on port 67 in replies that OFFER-2 and SILENT-2 do not judge."""
    j.not_applicable("no proxy reply on port 67 besides OFFERs")
    for r in an.proxy_replies():
        if r.sport != 67 or r.msg_type in ("OFFER", "NAK"):
            continue
        q = an.request_of(r)
        if r.msg_type == "ACK" and (q is None or q.pxe is None or q.pxe.get(71) is None):
            continue  # an ACK to an address request: SILENT-2
        j.expect(
            r.yiaddr in (ZERO, q.ciaddr if q else ZERO),
            f"{r.msg_type} on port 67 sets yiaddr {r.yiaddr}; a proxy never hands out "
            "addresses",
            [r.frame] + ([q.frame] if q else []),
            r.chaddr,
            r.src_ip,
        )


@check("SILENT-5")
def silent5(an: Analysis, j: Judge) -> None:
    """With MAC filtering known, nothing goes to a MAC the proxy does not serve."""
    if not an.ctx.serves:
        j.not_applicable("which MACs each proxy serves is not known (give --serves)")
        return
    j.not_applicable("no proxy traffic to judge")
    for r in an.proxy_replies():
        proxy = an.proxy_of(r)
        if an.served(proxy, r.chaddr, r.time) is False:
            q = an.request_of(r)
            early = (" yet: the Control Plane assigned it only later"
                     if an.assigned_after(r.chaddr, r.time) else "")
            j.fail(
                f"{proxy} sent {r.msg_type} to {r.chaddr}, a MAC it does not serve{early}",
                [r.frame] + ([q.frame] if q else []),
                r.chaddr,
                r.src_ip,
            )
        else:
            j.checked()
    for t in an.transfers:
        mac = an.mac_of(t.request.src_ip)
        data = [e for e in t.from_server() if e.op_name in ("DATA", "OACK")]
        if mac is None or not data:
            continue
        j.expect(
            an.served(t.server_ip, mac, t.request.time) is not False,
            f"TFTP server {t.server_ip} sent {t.request.filename!r} to {mac}, a MAC it "
            "does not serve",
            [t.request.frame, data[0].frame],
            mac,
            t.server_ip,
        )
    for h in an.http:
        mac = an.mac_of(h.request.src_ip)
        resp = h.response
        if mac is None or resp is None or resp.status is None or resp.status >= 400:
            continue
        j.expect(
            an.served(h.request.dst_ip, mac, h.request.time) is not False,
            f"HTTP server {h.request.dst_ip} answered {h.request.path} with {resp.status} "
            f"to {mac}, a MAC it does not serve",
            [h.request.frame, resp.frame],
            mac,
            h.request.dst_ip,
        )
