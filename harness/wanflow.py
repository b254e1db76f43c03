"""One flow as the WAN router counts it: plain data shared by the side that reads the
router's counters back (:mod:`harness.wan.flows`) and the side that judges them
(:mod:`harness.rules.site_facts`).

It lives apart from both so that neither has to import the other: the rules stay a lower
layer that any caller can feed (site-check on a real site has no WAN router of ours), and
the router does not depend on the rules.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RouterFlow:
    """One flow key the WAN router counted, and its packets.

    ``direction``: ``out`` (site → Control Plane side) or ``in`` (towards the site or
    the router); ``path``: ``wan`` (through NAT) or ``tunnel`` (inside the private
    WAN); ``verdict``: ``accepted`` or ``dropped`` by the router's egress filter.
    """

    src: str
    dst: str
    protocol: str
    dport: int
    direction: str
    path: str
    verdict: str
    packets: int
