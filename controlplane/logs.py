"""One JSON object per line: the Control Plane's log format.

The harness reads the service's stdout line by line; the first line with
`"event": "ready"` carries the URL. Every other line is an event with the
time and component, so logs of many components can be merged and filtered.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO

COMPONENT = "controlplane"


class JsonLog:
    """Writes events as JSON lines to a stream (stdout by default); thread-safe."""

    def __init__(self, stream: TextIO | None = None, lab: str | None = None) -> None:
        self._stream = stream
        self._lab = lab
        self._lock = threading.Lock()

    def __call__(self, event: str, **fields: Any) -> None:
        """Write one event line and flush, so a reader sees it at once."""
        record: dict[str, Any] = {"time": round(time.time(), 6), "component": COMPONENT}
        if self._lab:
            record["lab"] = self._lab
        record["event"] = event
        record.update(fields)
        line = json.dumps(record, default=str, sort_keys=False)
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(line + "\n")
            stream.flush()


def silent(event: str, **fields: Any) -> None:
    """A logger that drops everything (the default for in-process test apps)."""
