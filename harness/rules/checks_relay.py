"""RELAY-*: replies to requests that came through a DHCP relay (giaddr set)."""

from __future__ import annotations

from harness.capture.events import DhcpEvent
from harness.rules.analysis import ZERO, Analysis
from harness.rules.judge import Judge, between, check


def relayed(an: Analysis, j: Judge) -> list[tuple[DhcpEvent, DhcpEvent]]:
    """(request, proxy reply) pairs where the request carried a giaddr."""
    j.not_applicable("no relayed request was answered by a Boot Proxy")
    out = []
    for r in an.proxy_replies():
        q = an.request_of(r)
        if q is not None and q.giaddr != ZERO and q.dport == 67:
            out.append((q, r))
    return out


@check("RELAY-1")
def relay1(an: Analysis, j: Judge) -> None:
    """Reply to giaddr:67 with giaddr echoed and broadcast set."""
    for q, r in relayed(an, j):
        bad = []
        if r.dst_ip != q.giaddr or r.dport != 67:
            bad.append(f"sent to {r.dst_ip}:{r.dport}, must go to the relay {q.giaddr}:67")
        if r.giaddr != q.giaddr:
            bad.append(f"giaddr {r.giaddr} instead of {q.giaddr}")
        if not r.broadcast:
            bad.append("broadcast flag not set")
        j.expect_none(bad, "relayed reply: ", *between(q, r))


@check("RELAY-2")
def relay2(an: Analysis, j: Judge) -> None:
    """Option 54 and siaddr name the proxy, reachable without the relay."""
    for q, r in relayed(an, j):
        bad = []
        own = {r.src_ip, *an.proxies}
        if r.server_id not in own:
            bad.append(f"option 54 {r.server_id} is not the proxy's address {r.src_ip}")
        if r.siaddr != ZERO and (r.siaddr == q.giaddr or r.siaddr.startswith("127.")):
            bad.append(f"siaddr {r.siaddr} is not reachable from the client's subnet")
        j.expect_none(bad, "relayed reply: ", *between(q, r))


def size_with(r: DhcpEvent, extra: bytes) -> int:
    """Bytes of DHCP message ``r`` would need with one more option of value ``extra``
    appended: the fixed header and cookie, every option with its code and length, END,
    and the new option (split in 255-byte instances, RFC 3396). Padding after END does
    not count: the option goes in its place."""
    used = 240 + sum(2 + len(v) for _, v in r.options) + 1
    if r.overload:
        used = min(used, r.dhcp_len)  # options in file/sname took no room of their own
    return used + 2 * max(1, -(-len(extra) // 255)) + len(extra)


def room_for_reply(q: DhcpEvent) -> int:
    """The largest DHCP message the client takes: 576-byte datagrams (RFC 2131 §2) less
    IP and UDP headers, or what its option 57 allows."""
    return max(576, q.max_msg_size or 0) - 28


@check("RELAY-3")
def relay3(an: Analysis, j: Judge) -> None:
    """Option 82 echoed verbatim and last, or omitted; never invented."""
    j.not_applicable("no proxy reply to a request carrying option 82")
    for r in an.proxy_replies():
        q = an.request_of(r)
        if q is None:
            continue
        sent, got = q.relay_agent, r.relay_agent
        if sent is None and got is None:
            continue
        frames = [q.frame, r.frame]
        if sent is None:
            j.fail("reply carries option 82 the request did not have", frames, q.chaddr)
        elif got is None:
            # RFC 3046 §2.0: echo it, or leave it out only if the reply has no room
            with_82, room = size_with(r, sent), room_for_reply(q)
            if with_82 <= room:
                j.fail(f"option 82 left out although it fits ({with_82} bytes with it, room "
                       f"for {room}): a relay needs it echoed to deliver the reply",
                       frames, q.chaddr, r.src_ip)
            else:
                j.checked(note="option 82 left out: it would not fit")
        elif got != sent:
            j.fail("option 82 not echoed verbatim", frames, q.chaddr, r.src_ip)
        elif r.options[-1][0] != 82:
            j.fail(
                f"option 82 is not the last option (last is {r.options[-1][0]})",
                frames,
                q.chaddr,
                r.src_ip,
            )
        else:
            j.checked()
