"""Ladder (sequence) diagrams of one machine's boot exchange, as self-contained SVG.

A ladder has one vertical lane per party (the machine first, then the site DHCP
server, relays, Boot Proxies, anything else that spoke to the machine) and one
row per message, oldest at the top, with the time since the first message in a
left column. Rule verdicts that cite a frame are drawn beside its arrow, so a
reader sees which packet broke which rule.

Built from decoded capture events (:func:`ladder_from_captures`) or, without a
capture, from the machine's own timeline (:func:`ladder_from_timeline`); drawn
by :func:`render_svg`. The SVG uses no scripts, external CSS or web fonts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from harness.capture.events import Capture, DhcpEvent, HttpEvent, TftpEvent
from harness.judge.result import MachineResult, RunResult
from harness.rules.model import Finding, Verdict

BROADCAST = "*"  # destination lane of a broadcast the machine sent
TIMES = "\u00d7"  # multiplication sign, for "DATA x12"
MAX_ROWS = 250  # a boot storm's ladder stays readable; the rest is summarised


@dataclass(frozen=True)
class Lane:
    """One party on the ladder: a key (address), a role and a display title."""

    key: str
    role: str  # machine, site-dhcp, relay, proxy, control-plane, server
    title: str
    subtitle: str = ""


@dataclass(frozen=True)
class Mark:
    """A rule verdict shown beside an arrow."""

    rule_id: str
    verdict: str  # "pass" or "fail"
    message: str = ""


@dataclass
class Message:
    """One arrow: who sent what to whom, when; ``dst`` may be BROADCAST."""

    t: float
    src: str
    dst: str
    label: str
    proto: str  # dhcp, tftp, http, note
    frames: list[str] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    count: int = 1


@dataclass
class Ladder:
    """A complete diagram: its lanes left to right and its messages in time order."""

    title: str
    lanes: list[Lane]
    messages: list[Message]
    omitted: int = 0


# -- from captures -----------------------------------------------------------------

Event = DhcpEvent | TftpEvent | HttpEvent


def _leased_ips(mac: str, events: Iterable[DhcpEvent]) -> set[str]:
    ips: set[str] = set()
    for e in events:
        if e.chaddr.lower() != mac:
            continue
        if e.is_reply and e.yiaddr not in ("0.0.0.0", ""):
            ips.add(e.yiaddr)
        if not e.is_reply and e.ciaddr not in ("0.0.0.0", ""):
            ips.add(e.ciaddr)
        if not e.is_reply and e.requested_ip:
            ips.add(e.requested_ip)
    return ips


def _dhcp_label(e: DhcpEvent) -> str:
    parts = [e.msg_type or "BOOTP"]
    if e.dport == 4011 or e.sport == 4011:
        parts.append(":4011")
    if e.is_reply:
        if e.yiaddr not in ("0.0.0.0", ""):
            parts.append(e.yiaddr)
        elif e.msg_type in ("OFFER", "ACK"):
            parts.append("proxy")
        if e.file:
            parts.append(e.file)
    else:
        if e.giaddr not in ("0.0.0.0", ""):
            parts.append("relayed")
        if e.is_ipxe:
            parts.append("iPXE")
        elif e.vendor_class:
            parts.append(e.vendor_class.split(":", 1)[0])
    return " ".join(parts)


def _tftp_label(e: TftpEvent) -> str:
    if e.op_name in ("RRQ", "WRQ"):
        opts = " ".join(f"{k}={v}" for k, v in e.options)
        return f"{e.op_name} {e.filename or ''} {opts}".strip()
    if e.op_name == "OACK":
        return "OACK " + " ".join(f"{k}={v}" for k, v in e.options)
    if e.op_name == "ERROR":
        return f"ERROR {e.error_code}: {e.error_msg or ''}".strip()
    return e.op_name or f"opcode {e.opcode}"


def _http_label(e: HttpEvent) -> str:
    if e.kind == "request":
        return f"{e.method or '?'} {e.path or ''}".strip()
    return f"HTTP {e.status} {e.reason or ''}".strip()


class CaptureIndex:
    """One capture's events looked up by MAC and address, built once per report.

    A boot storm has hundreds of machines; scanning the whole capture for each
    of them would make the report quadratic in the number of machines.
    """

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self.by_addr: dict[str, list[Event]] = {}
        pool: list[Event] = [*capture.tftp, *capture.http]
        for e in pool:
            for key in {e.src_mac.lower(), e.dst_mac.lower(), e.src_ip, e.dst_ip}:
                self.by_addr.setdefault(key, []).append(e)

    def dhcp_for(self, mac: str) -> list[DhcpEvent]:
        """DHCP packets whose chaddr is ``mac`` (the capture's own index)."""
        return self.capture.dhcp_of(mac.lower())

    def transfers_for(self, mac: str, ips: Iterable[str]) -> list[Event]:
        """TFTP/HTTP packets from or to ``mac`` or one of ``ips``, each once."""
        seen: dict[int, Event] = {}
        for key in (mac, *ips):
            for e in self.by_addr.get(key, []):
                seen.setdefault(id(e), e)
        return list(seen.values())


def index_captures(captures: Mapping[str, Capture | CaptureIndex]) -> dict[str, CaptureIndex]:
    """Index every capture once (indexes passed in are kept)."""
    return {
        seg: c if isinstance(c, CaptureIndex) else CaptureIndex(c) for seg, c in captures.items()
    }


def _classify(events: Sequence[tuple[str, Event]], mac: str) -> dict[str, str]:
    """Role per address, inferred from the traffic (as the rules infer proxies)."""
    roles: dict[str, str] = {}

    def put(ip: str, role: str) -> None:
        rank = ["server", "control-plane", "relay", "site-dhcp", "proxy"]
        if ip and ip not in ("0.0.0.0", "255.255.255.255"):
            old = roles.get(ip)
            if old is None or rank.index(role) > rank.index(old):
                roles[ip] = role

    for _, e in events:
        if isinstance(e, DhcpEvent):
            if e.giaddr not in ("0.0.0.0", "") and (
                e.src_ip == e.giaddr or (not e.is_reply and e.src_mac.lower() != mac)
            ):
                put(e.src_ip, "relay")
                put(e.giaddr, "relay")
            if e.is_reply:
                if e.src_ip == e.giaddr:
                    continue
                proxyish = e.sport == 4011 or (
                    e.msg_type == "OFFER" and e.yiaddr in ("0.0.0.0", "")
                )
                put(e.src_ip, "proxy" if proxyish else "site-dhcp")
        elif isinstance(e, HttpEvent) and e.kind == "request" and (e.path or "").startswith(
            "/api/"
        ):
            put(e.dst_ip, "control-plane")  # the Control Plane API lives under /api/v1
        elif e.src_mac.lower() != mac:
            put(e.src_ip, "server")
    return roles


def _relay_aliases(events: Sequence[tuple[str, Event]], mac: str) -> dict[str, str]:
    """A relay forwards from its upstream address but is addressed by giaddr: one lane."""
    alias: dict[str, str] = {}
    for _, e in events:
        if (
            isinstance(e, DhcpEvent)
            and not e.is_reply
            and e.giaddr not in ("0.0.0.0", "")
            and e.src_mac.lower() != mac
            and e.src_ip != e.giaddr
        ):
            alias[e.src_ip] = e.giaddr
    return alias


def _lane_key(ip: str, mac_addr: str, alias: Mapping[str, str] | None = None) -> str:
    if ip and ip not in ("0.0.0.0", "255.255.255.255"):
        return (alias or {}).get(ip, ip)
    return mac_addr.lower()


_ROLE_TITLES = {
    "site-dhcp": "site DHCP",
    "relay": "relay",
    "proxy": "Boot Proxy",
    "control-plane": "Control Plane",
    "server": "server",
}
_ROLE_ORDER = {"machine": 0, "relay": 1, "site-dhcp": 2, "proxy": 3, "control-plane": 4}


def ladder_from_captures(
    name: str,
    mac: str,
    captures: Mapping[str, Capture | CaptureIndex],
    findings: Mapping[str, Sequence[Finding]] | None = None,
    names: Mapping[str, str] | None = None,
) -> Ladder:
    """The ladder of machine ``mac`` across the given captures (segment -> Capture).

    Events belong to the machine when their chaddr is its MAC (DHCP) or when they
    come from or go to its MAC or a leased address (TFTP, HTTP). ``names`` maps
    server addresses to display names (e.g. a proxy's name in the scenario).
    Findings whose ``frames`` cite a drawn frame mark its arrow.
    """
    mac = mac.lower()
    names = dict(names or {})
    findings = findings or {}
    multi = len(captures) > 1
    indexes = index_captures(captures)
    mine = {seg: ix.dhcp_for(mac) for seg, ix in indexes.items()}
    ips = _leased_ips(mac, [e for evs in mine.values() for e in evs])
    events: list[tuple[str, Event]] = []
    for seg, ix in indexes.items():
        events += [(seg, e) for e in mine[seg]]
        events += [(seg, e) for e in ix.transfers_for(mac, ips)]
    events.sort(key=lambda se: (se[1].time, se[0], se[1].frame))
    roles = _classify(events, mac)
    alias = _relay_aliases(events, mac)
    also: dict[str, list[str]] = {}
    for ip, key in alias.items():
        also.setdefault(key, []).append(ip)

    marks: dict[tuple[str, int], list[Mark]] = {}
    for seg, fs in findings.items():
        for f in fs:
            if f.verdict is Verdict.NOT_APPLICABLE:
                continue
            for fr in f.frames:
                marks.setdefault((seg, fr), []).append(Mark(f.rule_id, f.verdict.value, f.message))

    lanes: dict[str, Lane] = {mac: Lane(mac, "machine", name, mac)}
    messages: list[Message] = []
    bulk: dict[tuple[str, str, str, int, int], Message] = {}
    for seg, e in events:
        from_me = e.src_mac.lower() == mac
        src = mac if from_me else _lane_key(e.src_ip, e.src_mac, alias)
        if from_me:
            dst = (
                BROADCAST
                if e.dst_ip == "255.255.255.255" or e.dst_mac == "ff:ff:ff:ff:ff:ff"
                else _lane_key(e.dst_ip, e.dst_mac, alias)
            )
        elif e.dst_mac.lower() in (mac, "ff:ff:ff:ff:ff:ff") or e.dst_ip in ips:
            dst = mac
        else:
            dst = _lane_key(e.dst_ip, e.dst_mac, alias)
        for key in (src, dst):
            if key in lanes or key == BROADCAST:
                continue
            role = roles.get(key, "server")
            title = names.get(key) or _ROLE_TITLES.get(role, role)
            lanes[key] = Lane(key, role, title, " / ".join([key, *also.get(key, [])]))
        if isinstance(e, DhcpEvent):
            proto, label = "dhcp", _dhcp_label(e)
        elif isinstance(e, TftpEvent):
            proto, label = "tftp", _tftp_label(e)
        else:
            proto, label = "http", _http_label(e)
        frame = f"{seg}#{e.frame}" if multi else f"#{e.frame}"
        mk = marks.get((seg, e.frame), [])
        if isinstance(e, TftpEvent) and e.op_name in ("DATA", "ACK") and not mk:
            # a transfer's DATA/ACK pairs become two rows with counts, not hundreds
            bkey = (src, dst, e.op_name, e.sport, e.dport)
            row = bulk.get(bkey)
            if row is not None:
                row.count += 1
                row.frames.append(frame)
                row.label = f"{e.op_name} {TIMES}{row.count}"
                continue
            row = Message(e.time, src, dst, f"{e.op_name} {TIMES}1", proto, [frame])
            bulk[bkey] = row
            messages.append(row)
            continue
        bulk.clear()
        messages.append(Message(e.time, src, dst, label, proto, [frame], list(mk)))

    ordered = sorted(lanes.values(), key=lambda ln: (_ROLE_ORDER.get(ln.role, 9), ln.key))
    return _cap(Ladder(f"{name} ({mac})", ordered, messages))


def _cap(ladder: Ladder) -> Ladder:
    if len(ladder.messages) > MAX_ROWS:
        ladder.omitted = len(ladder.messages) - MAX_ROWS
        ladder.messages = ladder.messages[:MAX_ROWS]
    return ladder


# -- from a machine's own timeline ------------------------------------------------


def ladder_from_timeline(machine: MachineResult, names: Mapping[str, str] | None = None) -> Ladder:
    """The ladder as the machine itself recorded it, when there is no capture.

    ``sent`` and ``received`` events become arrows to and from their peer (a
    DISCOVER without a peer is a broadcast); file transfers are arrows from the
    server the last state change named; other events are notes on the machine lane.
    """
    names = dict(names or {})
    me = machine.mac.lower()
    lanes: dict[str, Lane] = {me: Lane(me, "machine", machine.name, me)}
    messages: list[Message] = []
    server: str | None = None

    def lane(key: str, role: str) -> str:
        if key not in lanes:
            lanes[key] = Lane(key, role, names.get(key) or _ROLE_TITLES.get(role, role), key)
        return key

    for ev in machine.timeline:
        d = ev.detail
        peer = ev.peer or (str(d["server"]) if d.get("server") else None)
        if ev.kind == "state":
            server = str(d["server"]) if d.get("server") else server
            messages.append(Message(ev.t, me, me, f"state {ev.summary}", "note"))
        elif ev.kind == "sent":
            dst = lane(peer, "server") if peer else BROADCAST
            messages.append(Message(ev.t, me, dst, ev.summary, "dhcp"))
        elif ev.kind == "received":
            role = "proxy" if d.get("proxy") or d.get("is_proxy") else "site-dhcp"
            src = lane(peer or "?", role if peer else "server")
            label = ev.summary
            if d.get("yiaddr") not in (None, "", "0.0.0.0"):
                label += f" {d['yiaddr']}"
            if d.get("file"):
                label += f" {d['file']}"
            messages.append(Message(ev.t, src, me, label, "dhcp"))
        elif ev.kind == "file":
            proto = str(d.get("proto") or "tftp")
            src_key = lane(server or peer or "?", "proxy")
            size = f" ({d['size']} B)" if d.get("size") is not None else ""
            label = f"{d.get('name') or ev.summary!s}{size}"
            messages.append(Message(ev.t, src_key, me, label, proto if proto != "?" else "tftp"))
        else:
            messages.append(Message(ev.t, me, me, f"{ev.kind}: {ev.summary}", "note"))
    ordered = sorted(lanes.values(), key=lambda ln: (_ROLE_ORDER.get(ln.role, 9), ln.key))
    return _cap(Ladder(f"{machine.name} ({me}) — machine timeline", ordered, messages))


# -- drawing -------------------------------------------------------------------------

LANE_W = 170
TIME_W = 110
TOP = 74
ROW_H = 30
MARK_W = 250
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
ROLE_COLOURS = {
    "machine": "#1f4e79",
    "site-dhcp": "#5b6770",
    "relay": "#8a5a00",
    "proxy": "#0b6e4f",
    "control-plane": "#5a2a82",
    "server": "#44546a",
}
PROTO_COLOURS = {"dhcp": "#1f5fa8", "tftp": "#8a4b08", "http": "#6a2c91", "note": "#666666"}


def _text(x: float, y: float, s: str, **attrs: str) -> str:
    extra = "".join(f" {k.rstrip('_').replace('_', '-')}={quoteattr(v)}" for k, v in attrs.items())
    return f'<text x="{x:.0f}" y="{y:.0f}"{extra}>{escape(s)}</text>'


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def render_svg(ladder: Ladder, id_prefix: str = "") -> str:
    """Draw the ladder as a standalone SVG document sized to its content.

    ``id_prefix`` keeps marker ids unique when several ladders share one HTML page.
    """
    pre = re.sub(r"[^A-Za-z0-9_-]", "_", id_prefix)
    index = {ln.key: i for i, ln in enumerate(ladder.lanes)}
    roles = {ln.key: ln.role for ln in ladder.lanes}
    n = max(len(ladder.lanes), 1)
    lanes_right = TIME_W + n * LANE_W
    width = lanes_right + MARK_W
    rows = len(ladder.messages) + (1 if ladder.omitted else 0)
    height = TOP + max(rows, 1) * ROW_H + 30
    t0 = ladder.messages[0].t if ladder.messages else 0.0

    def cx(key: str) -> float:
        return TIME_W + index[key] * LANE_W + LANE_W / 2

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ladder" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family={quoteattr(FONT)} '
        f'font-size="12" role="img" aria-label={quoteattr("ladder diagram: " + ladder.title)}>',
        f"<title>{escape(ladder.title)}</title>",
        "<defs>",
    ]
    for proto, colour in PROTO_COLOURS.items():
        out.append(
            f'<marker id="{pre}ah-{proto}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="5" '
            f'markerHeight="5" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            f'fill="{colour}"/></marker>'
        )
    out.append("</defs>")
    out.append(f'<rect width="{width}" height="{height}" fill="#ffffff"/>')
    out.append(_text(8, 20, "time (s)", fill="#555", font_weight="bold", class_="col-time"))
    out.append(_text(lanes_right + 10, 20, "rule verdicts", fill="#555", font_weight="bold"))
    for i in range(rows):
        if i % 2 == 0:
            top = TOP + i * ROW_H
            out.append(f'<rect x="0" y="{top}" width="{width}" height="{ROW_H}" fill="#f5f7fa"/>')
    for ln in ladder.lanes:
        x = cx(ln.key)
        colour = ROLE_COLOURS.get(ln.role, "#44546a")
        out.append(f'<g class="lane" data-role={quoteattr(ln.role)} data-key={quoteattr(ln.key)}>')
        out.append(
            f'<rect x="{x - LANE_W / 2 + 8:.0f}" y="8" width="{LANE_W - 16}" height="48" '
            f'rx="6" fill="{colour}"/>'
        )
        out.append(
            _text(x, 28, _clip(ln.title, 22), fill="#fff", font_weight="bold",
                  text_anchor="middle", class_="lane-title")
        )
        out.append(
            _text(x, 46, _clip(ln.subtitle, 24), fill="#e8eef5", font_size="11",
                  text_anchor="middle")
        )
        out.append(
            f'<line x1="{x:.0f}" y1="56" x2="{x:.0f}" y2="{height - 10}" stroke="{colour}" '
            f'stroke-width="1.5" stroke-dasharray="4 3" opacity="0.6"/>'
        )
        out.append("</g>")
    for i, m in enumerate(ladder.messages):
        y = TOP + i * ROW_H + ROW_H / 2 + 4
        colour = PROTO_COLOURS.get(m.proto, "#333")
        frames = " ".join(m.frames)
        out.append(
            f'<g class="msg" data-proto={quoteattr(m.proto)} data-frames={quoteattr(frames)}>'
        )
        out.append(_text(8, y + 4, f"+{m.t - t0:.3f}", fill="#333", class_="time"))
        if m.frames:
            out.append(_text(62, y + 4, m.frames[0], fill="#999", font_size="10"))
        x1 = cx(m.src) if m.src in index else TIME_W + 10
        if m.dst == BROADCAST:
            keys = [k for k in index if k != m.src]
            dhcp_side = [k for k in keys if roles.get(k) in ("site-dhcp", "relay", "proxy")]
            others = [cx(k) for k in (dhcp_side or keys)]
            x2 = max(others) if others else x1 + LANE_W / 2
            dash = ' stroke-dasharray="6 3"'
            for ox in others[:-1] if len(others) > 1 else []:
                out.append(f'<circle cx="{ox:.0f}" cy="{y:.0f}" r="2.5" fill="{colour}"/>')
        else:
            x2 = cx(m.dst) if m.dst in index else x1
            dash = ""
        if m.proto == "note" or x1 == x2:
            out.append(f'<circle cx="{x1:.0f}" cy="{y:.0f}" r="4" fill="{colour}"/>')
            out.append(
                _text(x1 + 10, y + 4, _clip(m.label, 60), fill=colour, font_style="italic",
                      class_="label")
            )
        else:
            out.append(
                f'<line class="arrow" x1="{x1:.0f}" y1="{y:.0f}" x2="{x2:.0f}" y2="{y:.0f}" '
                f'stroke="{colour}" stroke-width="2"{dash} marker-end="url(#{pre}ah-{m.proto})"/>'
            )
            mid = (x1 + x2) / 2
            span = int(abs(x2 - x1) / 7)
            out.append(
                _text(mid, y - 5, _clip(m.label, max(span, 18)), fill=colour,
                      text_anchor="middle", class_="label", paint_order="stroke",
                      stroke="#ffffff", stroke_width="3", stroke_linejoin="round")
            )
        mx: float = lanes_right + 10
        for mk in m.marks[:4]:
            ok = mk.verdict == "pass"
            sym = "✓" if ok else "✗"
            fill = "#1a7f37" if ok else "#c62828"
            label = f"{sym} {mk.rule_id}"
            out.append(
                f'<g class="mark mark-{"pass" if ok else "fail"}"><title>'
                f"{escape(mk.rule_id + ': ' + mk.message)}</title>"
                + _text(mx, y + 4, label, fill=fill, font_weight="bold")
                + "</g>"
            )
            mx += 8 * len(label) + 10
        out.append("</g>")
    if ladder.omitted:
        y = TOP + len(ladder.messages) * ROW_H + ROW_H / 2 + 4
        out.append(
            _text(TIME_W, y, f"… {ladder.omitted} more messages not drawn (see the pcap)",
                  fill="#555", font_style="italic")
        )
    if not ladder.messages:
        out.append(_text(TIME_W + 10, TOP + 18, "no traffic seen for this machine", fill="#555"))
    out.append("</svg>")
    return "\n".join(out)


# -- one machine of a run ------------------------------------------------------------


def _segments_for(result: RunResult, segment: str) -> list[str]:
    """The machine's segment, plus the relay's upstream segment when there is one."""
    out = [segment]
    for seg in result.scenario.get("segments", []) or []:
        relay = seg.get("relay") if isinstance(seg, dict) else None
        if isinstance(seg, dict) and seg.get("name") == segment and isinstance(relay, dict):
            up = relay.get("upstream")
            if up and up not in out:
                out.append(str(up))
    return out


def _name_proxies(ladder: Ladder, result: RunResult, segments: Sequence[str]) -> Ladder:
    """Put the scenario's proxy name on the proxy lane when that is unambiguous."""
    declared = [
        str(p.get("name"))
        for p in result.scenario.get("proxies", []) or []
        if isinstance(p, dict) and set(p.get("segments") or []) & set(segments)
    ]
    proxy_lanes = [ln for ln in ladder.lanes if ln.role == "proxy" and ln.title == "Boot Proxy"]
    if len(declared) == 1 and len(proxy_lanes) == 1:
        ladder.lanes = [
            Lane(ln.key, ln.role, f"Boot Proxy {declared[0]}", ln.subtitle)
            if ln is proxy_lanes[0]
            else ln
            for ln in ladder.lanes
        ]
    return ladder


def machine_ladder(
    result: RunResult,
    machine: MachineResult,
    captures: Mapping[str, Capture | CaptureIndex],
    names: Mapping[str, str] | None = None,
) -> Ladder:
    """The best ladder for one machine of a run: from its segments' captures when
    they hold its traffic, from its own timeline otherwise."""
    segments = [s for s in _segments_for(result, machine.segment) if s in captures]
    if segments:
        ladder = ladder_from_captures(
            machine.name,
            machine.mac,
            {s: captures[s] for s in segments},
            {s: result.findings.get(s, []) for s in segments},
            names,
        )
        if ladder.messages:
            return _name_proxies(ladder, result, segments)
    return _name_proxies(ladder_from_timeline(machine, names), result, [machine.segment])
