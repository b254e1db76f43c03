"""Counters the HTTP boot server keeps for the Boot Proxy's /metrics endpoint."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bootproxy.counterset import snapshot_fields


@dataclass
class HttpCounters:
    """Monotonic counters, readable at any time (``snapshot()`` for a plain dict).

    ``responses`` is keyed by status code; ``refused`` counts requests turned
    away by the MAC/IP filter or for unknown machines.
    """

    requests: int = 0
    bytes_sent: int = 0
    scripts_served: int = 0
    refused: int = 0
    active_connections: int = 0
    responses: Counter[int] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, object]:
        """A plain-dict copy, safe to serialise or render as Prometheus text."""
        return snapshot_fields(self)
