"""Pure helpers: latency percentiles and the parsing of perfdhcp's report.

Kept free of I/O so tests/unit/bench can pin them down on recorded output.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.errors import ParseError

__all__ = ["PerfdhcpReport", "max_sustained", "parse_perfdhcp", "percentiles"]


def percentiles(values_ms: Sequence[float], points: Sequence[int] = (50, 95, 99)
                ) -> dict[str, float | None]:
    """Nearest-rank percentiles (``p50``, ``p95``, ``p99``) of latencies in ms.

    Nearest-rank, not interpolated, so every figure is a latency that was
    really observed; ``None`` for every point when nothing was measured.
    """
    ordered = sorted(values_ms)
    out: dict[str, float | None] = {}
    for p in points:
        if not ordered:
            out[f"p{p}"] = None
            continue
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        out[f"p{p}"] = round(ordered[rank - 1], 3)
    return out


@dataclass
class PerfdhcpReport:
    """What one ``perfdhcp -4 -i`` run reported: counts, rate and per-exchange latencies."""

    sent: int
    received: int
    drops: int
    rate: float | None
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def drop_ratio(self) -> float:
        """Requests sent that got no answer, as a fraction of those sent (0 when none sent)."""
        if self.sent == 0:
            return 0.0
        return max(0, self.sent - self.received) / self.sent


_COUNT = re.compile(r"^(sent packets|received packets|drops):\s*(\d+)\s*$", re.M)
_RATE = re.compile(r"^Rate:\s*([0-9.]+)\s+DISCOVER-OFFER/second", re.M)
_TIMER = re.compile(r"^sent / received:\s*([0-9.]+)\s*/\s*([0-9.]+)\s*$", re.M)


def parse_perfdhcp(text: str) -> PerfdhcpReport:
    """Parse the DISCOVER-OFFER statistics and, with ``-x t``, the per-exchange timers.

    Raises :class:`ParseError` when the statistics block is missing (perfdhcp
    failed before sending: read its stderr).
    """
    section = text.split("***Statistics for: DISCOVER-OFFER***", 1)
    if len(section) != 2:
        raise ParseError("no DISCOVER-OFFER statistics in perfdhcp output; run it by hand "
                         "with the same argv to see why:\n" + text[-1500:])
    counts = {m.group(1): int(m.group(2)) for m in _COUNT.finditer(section[1])}
    missing = {"sent packets", "received packets"} - counts.keys()
    if missing:
        raise ParseError(f"perfdhcp statistics lack {', '.join(sorted(missing))}")
    rate_match = _RATE.search(text)
    latencies = [(float(r) - float(s)) * 1000.0 for s, r in _TIMER.findall(text)]
    return PerfdhcpReport(
        sent=counts["sent packets"], received=counts["received packets"],
        drops=counts.get("drops", 0),
        rate=float(rate_match.group(1)) if rate_match else None,
        latencies_ms=latencies)


def max_sustained(steps: Sequence[dict[str, float]], loss_limit: float = 0.01
                  ) -> dict[str, float] | None:
    """The step with the highest answered rate among those under ``loss_limit`` drop ratio.

    Each step is ``{"offered_per_s", "answered_per_s", "drop_ratio", ...}``;
    ``None`` when no step stayed under the limit.
    """
    good = [s for s in steps if s["drop_ratio"] < loss_limit]
    if not good:
        return None
    return max(good, key=lambda s: s["answered_per_s"])
