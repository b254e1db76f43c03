"""Structured logs: one JSON object per line on stderr, with the component and proxy name.

stdout is reserved for the single `{"event": "ready"}` line that supervisors wait for.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

__all__ = ["JsonFormatter", "log_event", "setup_logging"]

_LOGGER = logging.getLogger("bootproxy")


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object; fields passed as `extra={"fields": {...}}` are merged."""

    def __init__(self, proxy: str = "") -> None:
        super().__init__()
        self.proxy = proxy

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a single JSON line."""
        doc: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "component": record.name,
            "proxy": self.proxy,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


def setup_logging(proxy: str, level: str = "info") -> None:
    """Route every `bootproxy.*` logger to stderr as JSON lines at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(proxy))
    _LOGGER.handlers[:] = [handler]
    _LOGGER.setLevel(level.upper())
    _LOGGER.propagate = False


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` with structured `fields` (cheap when the level is disabled)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": {"event": event, **fields}})


def now() -> float:
    """Wall-clock seconds; one place to patch in tests."""
    return time.time()
