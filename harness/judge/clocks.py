"""A Ready node's clock as the whole-site judge reads it (``clock_within_s``, NTP-1).

Kept apart from the site builder so the choice of figure can be tested without a lab.
"""

from __future__ import annotations

from typing import Any

from controlplane.requirements import clock_reading
from harness.rules.site_facts import NodeClock


def node_clock(mac: str, facts: dict[str, Any], registered_at: float,
               site_source: str) -> NodeClock | None:
    """The node's clock offset from the site's time source; None: it reported no clock.

    A node agent that synced by NTP reports ``clock_offset_s``, its clock minus the
    server's measured on the node after the sync: that is the figure, since
    ``clock_unix`` minus the Control Plane's time of the ``node.registered`` event also
    counts the request's transit (1-2 s for a VM under TCG on a loaded host). Without
    it (no NTP offered, or the sync failed) the offset the node measured by a two-way
    exchange with the Control Plane's ``GET /api/v1/time`` is next, with its error bound
    (the Control Plane's own figure, ``controlplane.requirements.clock_reading``); only
    a node that measured nothing is judged by that one-way difference.
    ``site_source`` is the site's NTP server when it offers one, else "". The choice is
    the Control Plane's own (``clock_reading``), so the site judge and the Control Plane
    never read a node's clock differently.
    """
    def number(key: str) -> float | None:
        value = facts.get(key)
        return None if value is None else float(value)

    reading = clock_reading(clock_unix=number("clock_unix"), cp_clock=registered_at,
                            source=facts.get("clock_source"), offset_s=number("clock_offset_s"),
                            error_s=number("clock_error_s"), server=facts.get("clock_server"))
    if reading is None:
        return None
    server = str(reading.server or site_source) if reading.source == "ntp" else site_source
    return NodeClock(mac, reading.offset_s, server, reading.error_s)
