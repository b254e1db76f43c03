"""Run-time fault injection, scoped per route name.

The harness switches faults on through `PUT /api/v1/faults` to see how a Boot
Proxy or node agent copes with a slow, flaky, dead or lying Control Plane.
Faults live in memory only: they are a test hook, not site state, and a
restart clears them. The fault API itself is never faulted, so a test can
always switch faults off again.
"""

from __future__ import annotations

import random
import secrets
import threading
from typing import Any

from .models import FaultIn, normalise_mac

WILDCARD = "*"
# Routes faults never apply to: otherwise a "*" fault could not be cleared.
EXEMPT = frozenset({"faults_get", "faults_set", "faults_clear"})



def _is_mac(value: str) -> bool:
    """A MAC in the API's canonical form, as responses carry it."""
    try:
        return normalise_mac(value) == value
    except ValueError:
        return False


class FaultTable:
    """The active faults by route name; thread-safe."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._faults: dict[str, FaultIn] = {}
        self._lock = threading.Lock()
        self._rng = rng or random.Random()

    def set(self, fault: FaultIn) -> None:
        """Install or replace the fault for `fault.endpoint`; an all-zero fault removes it."""
        with self._lock:
            if not (fault.latency_ms or fault.error_rate or fault.down or fault.wrong_answer):
                self._faults.pop(fault.endpoint, None)
            else:
                self._faults[fault.endpoint] = fault

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def all(self) -> list[FaultIn]:
        """The active faults."""
        with self._lock:
            return list(self._faults.values())

    def for_route(self, route: str) -> FaultIn | None:
        """The fault that applies to `route`: its own, else the wildcard one."""
        if route in EXEMPT:
            return None
        with self._lock:
            return self._faults.get(route) or self._faults.get(WILDCARD)

    def roll(self, rate: float) -> bool:
        """True with probability `rate`."""
        with self._lock:
            return rate >= 1.0 or self._rng.random() < rate


def corrupt(value: Any, key: str = "") -> Any:
    """A plausible but wrong version of a JSON answer (the `wrong_answer` fault).

    The shape stays valid so the client's parser accepts it; the content lies:
    MACs get their last octet flipped, the clock is an hour ahead, tokens are
    unknown, host names and command lines are altered, revisions jump.
    """
    if isinstance(value, dict):
        return {k: corrupt(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [corrupt(v, key) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if key == "unix" and isinstance(value, int | float):
        return value + 3600.0
    if key == "revision" and isinstance(value, int):
        return value + 1000
    if isinstance(value, str):
        if _is_mac(value):
            last = int(value[-2:], 16) ^ 0xFF
            return f"{value[:-2]}{last:02x}"
        if key.endswith("token"):
            return f"flwrong_{secrets.token_urlsafe(12)}"
        if key == "hostname":
            return f"{value}-wrong"
        if key == "cmdline":
            return f"{value} flexlab.wrong_answer=1"
    return value
