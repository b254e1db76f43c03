"""One JSON object per line: the Control Plane's log format.

The harness reads the service's stdout line by line; the first line with
`"event": "ready"` carries the URL. Every line has the fields the Boot Proxy's
log has (`bootproxy/logs.py`), so the logs of many components merge and filter
alike: `ts` (Unix seconds), `level`, `component`, `event`, `msg`, then the
event's own fields. As in the Boot Proxy, `msg` is the event's name.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

COMPONENT = "controlplane"
LEVELS = ("debug", "info", "warning", "error")
# Events that are never routine; any other event is `info` unless the caller says.
_EVENT_LEVELS = {"error": "error", "tls_fault": "warning", "fault_set": "warning"}


class JsonLog:
    """Writes events as JSON lines to a stream (stdout by default); thread-safe."""

    def __init__(self, stream: TextIO | None = None, lab: str | None = None) -> None:
        self._stream = stream
        self._lab = lab
        self._lock = threading.Lock()

    def __call__(self, event: str, level: str | None = None, **fields: Any) -> None:
        """Write one event line and flush, so a reader sees it at once."""
        line = json.dumps(record(event, level, self._lab, **fields), default=str)
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(line + "\n")
            stream.flush()


def record(event: str, level: str | None = None, lab: str | None = None,
           **fields: Any) -> dict[str, Any]:
    """One log record: the shared head (`ts`, `level`, `component`, `event`, `msg`), the
    lab id when there is one, then `fields`."""
    level = level or event_level(event, fields)
    if level not in LEVELS:
        raise ValueError(f"log level {level!r}: use one of {', '.join(LEVELS)}")
    head: dict[str, Any] = {"ts": round(time.time(), 6), "level": level,
                            "component": COMPONENT, "event": event, "msg": event}
    if lab:
        head["lab"] = lab
    clash = head.keys() & fields.keys()
    if clash:
        raise ValueError(f"log fields {sorted(clash)} would overwrite the line's own")
    return {**head, **fields}


def event_level(event: str, fields: dict[str, Any]) -> str:
    """The level an event is logged at when the caller does not say.

    A request the service answered with 5xx (or never answered: status 0) is an
    error; errors and deliberate misbehaviour (faults) stand out from routine lines.
    """
    if event == "request":
        status = fields.get("status")
        return "error" if isinstance(status, int) and (status == 0 or status >= 500) else "info"
    return _EVENT_LEVELS.get(event, "info")


def silent(event: str, **fields: Any) -> None:
    """A logger that drops everything (the default for in-process test apps)."""
