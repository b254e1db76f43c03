"""Structured logs: one JSON object per line on stderr, with the component and proxy name.

Every line starts with the head the Control Plane's log shares (controlplane/logs.py), so
the two merge and filter alike: `ts` (Unix seconds), `level`, `component` (the logger, e.g.
`bootproxy.dhcp`), `event` (a name such as `dhcp_offer`), `msg`; then `proxy` and the
event's own fields. A field may not overwrite the head. `msg` is the event's name for
`log_event` lines and the formatted text for a plain `logger.info(...)` line, whose
event is `message`.

stdout is reserved for the single `{"event": "ready"}` line that supervisors wait for.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

__all__ = ["HEAD", "JsonFormatter", "log_event", "setup_logging"]

_LOGGER = logging.getLogger("bootproxy")
HEAD = ("ts", "level", "component", "event", "msg")
PLAIN_EVENT = "message"  # the event of a line logged without log_event
_RESERVED = frozenset((*HEAD, "proxy"))


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: the shared head, `proxy`, then the record's fields.

    Fields come from `extra={"fields": {...}}` (what `log_event` passes); one that names a
    head key is kept as `field_<name>` rather than breaking the schema.
    """

    def __init__(self, proxy: str = "") -> None:
        super().__init__()
        self.proxy = proxy

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a single JSON line."""
        fields = getattr(record, "fields", None)
        fields = fields if isinstance(fields, dict) else {}
        event = fields.get("event")
        doc: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "component": record.name,
            "event": event if isinstance(event, str) and event else PLAIN_EVENT,
            "msg": record.getMessage(),
            "proxy": self.proxy,
        }
        for key, value in fields.items():
            if key == "event":
                continue
            doc[f"field_{key}" if key in _RESERVED else key] = value
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
    """Log `event` with structured `fields` (cheap when the level is disabled).

    A field named like the head (`ts`, `level`, `component`, `msg`, `proxy`) is a bug in
    the caller: ValueError, as in the Control Plane's log.
    """
    if logger.isEnabledFor(level):
        if not _RESERVED.isdisjoint(fields):
            clash = sorted(_RESERVED.intersection(fields))
            raise ValueError(f"log fields {clash} would overwrite the line's own")
        logger.log(level, event, extra={"fields": {"event": event, **fields}})


def now() -> float:
    """Wall-clock seconds; one place to patch in tests."""
    return time.time()
