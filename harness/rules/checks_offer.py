"""OFFER-*: the ProxyDHCP reply to a DISCOVER on UDP 67."""

from __future__ import annotations

from harness.capture.events import DhcpEvent
from harness.rules.analysis import ZERO, Analysis
from harness.rules.judge import Judge, check

NO_OFFER = "no OFFER from a Boot Proxy in the capture"


def _offers(an: Analysis, j: Judge) -> list[tuple[DhcpEvent, DhcpEvent | None]]:
    j.not_applicable(NO_OFFER)
    return [(o, an.request_of(o)) for o in an.proxy_offers()]


def _relay_delivered(an: Analysis, o: DhcpEvent) -> bool:
    """The reply was seen on the client's side of a relay (giaddr set, or sent by a
    declared relay), so its addressing is the relay's doing, not the proxy's."""
    return o.giaddr != ZERO or o.src_ip in an.ctx.relays


def _frames(o: DhcpEvent, q: DhcpEvent | None) -> list[int]:
    return [o.frame] + ([q.frame] if q else [])


def _about(o: DhcpEvent, q: DhcpEvent | None) -> tuple[list[int], str, str]:
    """Where a finding about offer ``o`` (answering ``q``, when seen) points: its frames,
    the client's MAC and the offering server."""
    return _frames(o, q), o.chaddr, o.src_ip


@check("OFFER-1")
def offer1(an: Analysis, j: Judge) -> None:
    """Header echo, cookie, END and flags. giaddr echo is judged by RELAY-1."""
    for o, q in _offers(an, j):
        bad = []
        if not o.magic_ok:
            bad.append("no DHCP magic cookie")
        if not o.end_present:
            bad.append("options do not end with 255")
        if q is None:
            others = [
                r
                for r in an.replies
                if (r.xid, r.chaddr) == (o.xid, o.chaddr) and r.src_ip != o.src_ip
            ]
            if not others:
                bad.append(f"xid {o.xid:#010x} / chaddr {o.chaddr} match no DISCOVER before it")
            # else another server answered the same xid: the capture lost the DISCOVER
        else:
            if (o.htype, o.hlen) != (q.htype, q.hlen):
                bad.append(f"htype/hlen {o.htype}/{o.hlen} not echoed ({q.htype}/{q.hlen})")
            if o.flags != q.flags and not o.broadcast:
                bad.append(f"flags {o.flags:#06x} neither echo {q.flags:#06x} nor set broadcast")
        j.expect_none(bad, "proxy OFFER: ", *_about(o, q))


@check("OFFER-2")
def offer2(an: Analysis, j: Judge) -> None:
    """A proxy hands out no address."""
    for o, q in _offers(an, j):
        j.expect(
            o.yiaddr == ZERO and o.ciaddr == ZERO,
            f"proxy OFFER gives yiaddr {o.yiaddr} ciaddr {o.ciaddr}: a ProxyDHCP must "
            "leave both 0.0.0.0 (the site DHCP server hands out addresses)",
            *_about(o, q),
        )


@check("OFFER-3")
def offer3(an: Analysis, j: Judge) -> None:
    """Option 60 identifies the offer as PXE (or HTTP boot)."""
    for o, q in _offers(an, j):
        # HTTP boot clients need HTTPClient; a configured equivalent (HW-Client) may be
        # echoed to the clients that sent it.
        want = "PXEClient"
        client_prefix = an.ctx.vendor_prefix(q.vendor_class) if q is not None else None
        if client_prefix == "HTTPClient":
            want = "HTTPClient"
        allowed = {want} | ({client_prefix} if client_prefix not in (None, "HTTPClient") else set())
        vc = o.vendor_class
        j.expect(
            vc is not None and vc.startswith(tuple(a for a in allowed if a)),
            f"proxy OFFER has option 60 {vc!r}, needs {want!r}: iPXE and EDK2 ignore "
            "offers without it",
            *_about(o, q),
        )


@check("OFFER-4")
def offer4(an: Analysis, j: Judge) -> None:
    """Server identifier is the proxy's own address (relayed offers: RELAY-2)."""
    for o, q in _offers(an, j):
        if (q is not None and q.giaddr != ZERO) or _relay_delivered(an, o):
            continue  # relayed: the relay's hop and RELAY-2 decide
        j.expect(
            o.server_id == o.src_ip,
            f"option 54 is {o.server_id} but the OFFER came from {o.src_ip}; the client "
            "sends its 4011 request there",
            *_about(o, q),
        )


@check("OFFER-5")
def offer5(an: Analysis, j: Judge) -> None:
    """Option 97 echoed verbatim."""
    for o, q in _offers(an, j):
        if q is None or q.uuid is None:
            continue
        if o.uuid != q.uuid:
            what = "missing" if o.uuid is None else f"{o.uuid.hex()} instead of {q.uuid.hex()}"
            j.fail(f"option 97 not echoed: {what}", *_about(o, q))
        else:
            j.checked()


def boot_shape(o: DhcpEvent) -> tuple[str | None, str]:
    """Which OFFER-6 shape an offer has ('a', 'b', 'c') or None with the reason."""
    pxe = o.pxe
    has_file = bool(o.file or o.bootfile_opt)
    has_server = o.siaddr != ZERO or bool(o.tftp_server_opt)
    if pxe is None or not pxe.suboptions:
        return "c", "no option 43 boot data: client asks on UDP 4011"
    dc = pxe.discovery_control
    menu, prompt = pxe.get(9), pxe.get(10)
    if dc is not None and dc & 0x08:
        if has_file and has_server:
            return "a", "43.6 bit 3 with siaddr and file"
        return None, "43.6 bit 3 is set but siaddr or file is empty"
    if menu is not None and prompt is not None:
        return "b", "boot menu 43.9/43.10"
    if (menu is None) != (prompt is None):
        return None, "half a boot menu: 43.9 and 43.10 must come together"
    if pxe.get(8) is not None:
        return "b", "boot server list 43.8"
    if dc is not None:
        return None, f"43.6={dc:#04x} without bit 3 and without a menu or server list"
    return "c", "option 43 without discovery data: client asks on UDP 4011"


@check("OFFER-6")
def offer6(an: Analysis, j: Judge) -> None:
    """Boot information in one of the three shapes. Broken 43 is OFFER-7's."""
    for o, q in _offers(an, j):
        if not (o.vendor_class or "").startswith("PXEClient"):
            continue
        if o.pxe is not None and o.pxe.error:
            continue
        shape, why = boot_shape(o)
        if shape is None:
            j.fail(f"no usable boot information: {why}", *_about(o, q))
        elif shape == "c" and o.server_id is None and o.siaddr == ZERO:
            j.fail("no boot data and no address for the 4011 request", _frames(o, q), o.chaddr)
        else:
            j.checked()


def pxe_problem(o: DhcpEvent) -> str | None:
    """What is wrong with option 43 of ``o``, or None."""
    if o.pxe is None:
        return None
    if o.pxe.error:
        return f"option 43 malformed: {o.pxe.error}"
    dc = o.pxe.discovery_control
    if dc is not None and dc & 0xF0:
        return f"43.6 = {dc:#04x}: bits 4-7 are reserved and must be zero"
    return None


@check("OFFER-7")
def offer7(an: Analysis, j: Judge) -> None:
    """Option 43 encoding in every proxy reply that carries it."""
    j.not_applicable("no proxy reply carries option 43")
    for r in an.proxy_replies():
        if r.pxe is None:
            continue
        problem = pxe_problem(r)
        q = an.request_of(r)
        if problem:
            j.fail(f"{r.msg_type}: {problem}", _frames(r, q), r.chaddr, r.src_ip)
        else:
            j.checked()


@check("OFFER-8")
def offer8(an: Analysis, j: Judge) -> None:
    """file/sname termination, agreement with 66/67, overload only when needed."""
    for o, q in _offers(an, j):
        bad = []
        ov = o.overload or 0
        if not ov & 1 and b"\x00" not in o.file_raw:
            bad.append("file field is not NUL-terminated")
        if not ov & 2 and b"\x00" not in o.sname_raw:
            bad.append("sname field is not NUL-terminated")
        if o.bootfile_opt is not None and o.file and o.bootfile_opt != o.file:
            bad.append(f"option 67 {o.bootfile_opt!r} disagrees with file {o.file!r}")
        if o.tftp_server_opt is not None and o.sname and o.tftp_server_opt != o.sname:
            bad.append(f"option 66 {o.tftp_server_opt!r} disagrees with sname {o.sname!r}")
        if ov and o.dhcp_len < 548:
            bad.append(f"option overload {ov} used in a {o.dhcp_len}-byte reply that had room")
        j.expect_none(bad, "", *_about(o, q))


@check("OFFER-9")
def offer9(an: Analysis, j: Judge) -> None:
    """No client-only options in the offer."""
    for o, q in _offers(an, j):
        found = [c for c in (50, 55, 57) if o.has_option(c)]
        j.expect(
            not found,
            f"proxy OFFER carries client-only option(s) {found}",
            *_about(o, q),
        )


def delivery(o: DhcpEvent) -> str:
    """How a reply not sent to 255.255.255.255 was delivered, in words: to the Ethernet
    broadcast address it is a subnet-directed broadcast, else a unicast (to whose MAC)."""
    if o.dst_mac.lower() == "ff:ff:ff:ff:ff:ff":
        return f"sent as a subnet-directed broadcast to {o.dst_ip}"
    return f"unicast to {o.dst_ip} ({o.dst_mac})"


@check("OFFER-10")
def offer10(an: Analysis, j: Judge) -> None:
    """Ports and broadcast delivery of direct (unrelayed) offers."""
    for o, q in _offers(an, j):
        if q is None or q.giaddr != ZERO or _relay_delivered(an, o):
            continue  # relayed: RELAY-1 judges the server's hop
        bad = []
        if (o.sport, o.dport) != (67, 68):
            bad.append(f"sent from port {o.sport} to {o.dport}, needs 67 -> 68")
        must_bcast = bool(q.flags & 0x8000) or q.ciaddr == ZERO
        if must_bcast and o.dst_ip != "255.255.255.255":
            bad.append(f"{delivery(o)} although the client has no address yet and needs "
                       "the limited broadcast 255.255.255.255")
        j.expect_none(bad, "proxy OFFER ", *_about(o, q))


@check("OFFER-11")
def offer11(an: Analysis, j: Judge) -> None:
    """Payload size between 300 and 576 (or the client's option 57)."""
    for o, q in _offers(an, j):
        limit = max(576, (q.max_msg_size or 0) - 28) if q is not None else 576
        j.expect(
            300 <= o.dhcp_len <= limit,
            f"OFFER payload is {o.dhcp_len} bytes; keep it within 300..{limit} "
            "(some ROMs drop short or long replies)",
            *_about(o, q),
        )
