"""The summary page's WAN section: what crossed the site's WAN router, read from the
router's own nftables flow sets (:mod:`harness.wan.flows`) as the run saved them.

One row per port, direction, path and verdict, with the site hosts behind it: a reader
sees at a glance that only tcp/443 went out (inside the tunnel, in private mode), that
nothing came in, and which port a blocked party tried (dropped). Empty when the run had
no WAN router.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.rules.site_facts import WanFacts, WanFlow

DIRECTION = {"out": "site → Control Plane side", "in": "towards the site"}
PATH = {"wan": "plain WAN (NAT)", "tunnel": "inside the private WAN (WireGuard)"}
VERDICT = {"accepted": "allowed", "dropped": "dropped"}


@dataclass
class FlowRow:
    """Every flow of one (direction, path, protocol/port, verdict), merged."""

    direction: str
    path: str
    port: str
    verdict: str
    parties: list[str] = field(default_factory=list)
    packets: int = 0


def flow_rows(flows: tuple[WanFlow, ...]) -> list[FlowRow]:
    """The flows grouped for the table: dropped ones first (what a reader looks for),
    then by direction and port."""
    rows: dict[tuple[str, str, str, str], FlowRow] = {}
    for f in flows:
        key = (f.direction, f.path, f"{f.protocol}/{f.dport}", f.verdict)
        row = rows.setdefault(key, FlowRow(*key))
        who = f"{f.party or f.src} → {f.dst}"
        if who not in row.parties:
            row.parties.append(who)
        row.packets += f.packets
    return sorted(rows.values(), key=lambda r: (r.verdict != "dropped", r.direction,
                                                r.path, r.port))


def wan_section(wan: WanFacts | None, text: Callable[[object], str]) -> str:
    """The ``<section id="wan">`` of the summary page ('' without a WAN); ``text``
    escapes for HTML."""
    if wan is None:
        return ""
    rows = flow_rows(wan.flows)
    crossed = sorted({r.port for r in rows if r.verdict == "accepted"})
    dropped = sorted({f"{r.port} ({r.direction})" for r in rows if r.verdict == "dropped"})
    tunnel = "; site ↔ Control Plane traffic must use the WireGuard tunnel" if wan.private \
        else ""
    lede = (f"The router lets out TCP {', '.join(map(str, wan.allowed_ports))} and nothing "
            f"in{tunnel}. The cloud side sees the site as {wan.nat_address or '?'}. "
            f"Crossed: {', '.join(crossed) or 'nothing'}; "
            f"dropped: {', '.join(dropped) or 'nothing'}.")
    if not rows:
        body = '<p class="mut">the router saw no flow</p>'
    else:
        trs = "".join(
            f"<tr><td><b>{text(VERDICT.get(r.verdict, r.verdict))}</b></td>"
            f"<td>{text(r.port)}</td><td>{text(DIRECTION.get(r.direction, r.direction))}</td>"
            f"<td>{text(PATH.get(r.path, r.path))}</td>"
            f"<td>{text('; '.join(r.parties))}</td><td class=\"num\">{r.packets}</td></tr>"
            for r in rows)
        body = ("<table><tr><th>verdict</th><th>port</th><th>direction</th><th>path</th>"
                f"<th>who → where</th><th>packets</th></tr>{trs}</table>")
    return (f'<section id="wan"><h2>WAN flows</h2><p>{text(lede)}</p>{body}'
            '<p class="mut">from the WAN router\'s nftables flow sets (per flow key, '
            "counted by the router itself)</p></section>")
