"""ACK4011-*: the boot-server exchange on UDP 4011."""

from __future__ import annotations

from collections.abc import Iterator

from harness.capture.events import DhcpEvent
from harness.rules.analysis import ZERO, Analysis, Exchange
from harness.rules.judge import Judge, between, check


def exchanges_4011(an: Analysis) -> list[Exchange]:
    """REQUESTs sent to UDP 4011 (of a proxy under test, when proxies are known)."""
    return [
        ex
        for ex in an.exchanges
        if ex.to_4011 and ex.request.op == 1 and (not an.proxies or an.is_proxy(ex.request.dst_ip))
    ]


def acks(an: Analysis, ex: Exchange) -> list[DhcpEvent]:
    """Replies from the addressed server to this 4011 exchange."""
    return [r for r in ex.replies if r.src_ip == ex.request.dst_ip]


def answered_4011(an: Analysis) -> Iterator[tuple[DhcpEvent, DhcpEvent]]:
    """Each 4011 REQUEST with each ACK its addressed server sent back, in capture order."""
    for ex in exchanges_4011(an):
        for a in acks(an, ex):
            yield ex.request, a


def menu_types(raw: bytes | None) -> set[int]:
    """Boot-item types listed in a 43.9 PXE_BOOT_MENU (type, length, description)."""
    out: set[int] = set()
    i = 0
    while raw is not None and i + 3 <= len(raw):
        out.add(int.from_bytes(raw[i : i + 2], "big"))
        i += 3 + raw[i + 2]
    return out


def _expected_answer(an: Analysis, ex: Exchange) -> bool:
    """Must this request be answered? Not when the proxy filters the MAC out, nor
    for a boot-item type the proxy never offered (unknown types get silence)."""
    q = ex.request
    if an.served(q.dst_ip, q.chaddr, q.time) is False:
        return False
    item = q.pxe.boot_item if q.pxe else None
    if item is None or item[0] == 0:
        return True
    offered: set[int] = set()
    for o in an.proxy_offers():
        if o.chaddr == q.chaddr and an.proxy_of(o) == q.dst_ip and o.pxe is not None:
            offered |= menu_types(o.pxe.get(9))
    return item[0] in offered


@check("ACK4011-1")
def ack1(an: Analysis, j: Judge) -> None:
    """Every 4011 transaction is answered, from 4011, to the request's address and port."""
    j.not_applicable("no DHCPREQUEST to UDP 4011 in the capture")
    seen: set[tuple[str, int]] = set()
    for ex in exchanges_4011(an):
        q = ex.request
        answers = acks(an, ex)
        key = (q.chaddr, q.xid)
        for a in answers:
            j.expect(
                (a.sport, a.dst_ip, a.dport) == (4011, q.src_ip, q.sport),
                f"4011 ACK sent {a.src_ip}:{a.sport} -> {a.dst_ip}:{a.dport}, but the "
                f"request came from {q.src_ip}:{q.sport}; it must go back there from port "
                "4011 (EDK2 listens on 4011, iPXE on 68)",
                *between(q, a),
            )
        if answers or key in seen:
            seen.add(key)
            continue
        later = [
            e
            for e in an.exchanges
            if e.request.chaddr == q.chaddr
            and e.request.xid == q.xid
            and e is not ex
            and e.request.time > q.time
            and acks(an, e)
        ]
        if later or not _expected_answer(an, ex):
            continue
        if an.end_time - q.time < an.scaled(1.0):
            continue  # the capture ended before an answer was due
        seen.add(key)
        j.fail(
            f"4011 REQUEST xid {q.xid:#010x} to {q.dst_ip} was never answered; the client "
            "retries and then fails to boot",
            [q.frame],
            q.chaddr,
            q.dst_ip,
        )


@check("ACK4011-2")
def ack2(an: Analysis, j: Judge) -> None:
    """Contents of the 4011 ACK."""
    j.not_applicable("no 4011 ACK in the capture")
    for q, a in answered_4011(an):
        bad = []
        if a.msg_type != "ACK":
            bad.append(f"message type {a.msg_type}, needs ACK")
        if not an.ctx.accepts_vendor(a.vendor_class):
            bad.append("no option 60 PXEClient")
        if a.server_id is None:
            bad.append("no option 54")
        if q.uuid is not None and a.uuid != q.uuid:
            bad.append("option 97 not echoed")
        has_menu = a.pxe is not None and a.pxe.get(9) is not None
        if not ((a.siaddr != ZERO and (a.file or a.bootfile_opt)) or has_menu):
            bad.append("no boot data (siaddr + file, or 43.9)")
        j.expect_none(bad, "4011 ACK: ", *between(q, a))


@check("ACK4011-3")
def ack3(an: Analysis, j: Judge) -> None:
    """No address handed out on 4011."""
    j.not_applicable("no 4011 ACK in the capture")
    for q, a in answered_4011(an):
        j.expect(
            a.yiaddr in (ZERO, q.ciaddr),
            f"4011 ACK gives yiaddr {a.yiaddr}; only 0.0.0.0 or the client's "
            f"{q.ciaddr} are allowed",
            *between(q, a),
        )


@check("ACK4011-4")
def ack4(an: Analysis, j: Judge) -> None:
    """43.71 boot item echoed with the same type and layer."""
    j.not_applicable("no 4011 REQUEST carrying 43.71 was answered")
    for q, a in answered_4011(an):
        item = q.pxe.boot_item if q.pxe else None
        if item is None:
            continue
        got = a.pxe.boot_item if a.pxe else None
        j.expect(
            got == item,
            f"request asked for boot item type {item[0]} layer {item[1]}, the ACK "
            f"answers {got}; iPXE discards it",
            *between(q, a),
        )
