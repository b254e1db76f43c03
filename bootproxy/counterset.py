"""What the TFTP and HTTP boot servers' counter dataclasses share: a plain-dict snapshot."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields
from typing import Any

__all__ = ["snapshot_fields"]


def snapshot_fields(counters: Any) -> dict[str, object]:
    """Every field of a counters dataclass by name, each ``Counter`` copied to a plain dict,
    so the result is safe to serialise or render while the server keeps counting."""
    out: dict[str, object] = {}
    for f in fields(counters):
        value = getattr(counters, f.name)
        out[f.name] = dict(value) if isinstance(value, Counter) else value
    return out
