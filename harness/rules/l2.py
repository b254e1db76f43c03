"""Which layer-2 domain each machine is in, read off the wire (SITE-4's evidence).

A client's broadcast reaches only its own L2 domain; a relay carries it elsewhere as a
unicast with ``giaddr`` set. So a MAC is *in* a segment's L2 domain when that
segment's capture holds a DHCP request it sent itself: giaddr 0 and the Ethernet
source equal to ``chaddr`` (a relayed copy has the relay's MAC and a giaddr). Judging
from packets, not from the scenario, is what lets a real site's captures be judged
the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.capture.events import Capture

ZERO = "0.0.0.0"


def heard_directly(capture: Capture) -> frozenset[str]:
    """MACs that sent a DHCP request straight onto this capture's segment."""
    return frozenset(e.chaddr for e in capture.dhcp
                     if e.op == 1 and e.giaddr == ZERO and e.src_mac == e.chaddr)


def relayed_in(capture: Capture) -> dict[str, frozenset[str]]:
    """MACs whose requests reached this segment through a relay, per relay (giaddr)."""
    out: dict[str, set[str]] = {}
    for e in capture.dhcp:
        if e.op == 1 and e.giaddr != ZERO:
            out.setdefault(e.giaddr, set()).add(e.chaddr)
    return {giaddr: frozenset(macs) for giaddr, macs in out.items()}


def l2_domains(captures: Mapping[str, Capture]) -> dict[str, frozenset[str]]:
    """Per segment (the captures' keys), the MACs heard directly on it."""
    return {segment: heard_directly(capture) for segment, capture in captures.items()}
