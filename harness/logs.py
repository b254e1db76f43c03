"""The harness's own structured log: one logger, the Boot Proxy's and Control Plane's shape.

Every line the harness logs is an event with the head the Boot Proxy (``bootproxy/logs.py``)
and the Control Plane (``controlplane/logs.py``) share — ``ts`` (Unix seconds), ``level``,
``component`` (always ``harness``), ``event`` (a name such as ``lab_built``), ``msg`` — then
the event's own fields, so a run's three logs merge and filter alike (``jq 'select(.pid ==
4242)'``). A field may not overwrite the head. ``flexlab --log-format json|text -v``
configures it (:func:`configured`); until then the logger has only a NullHandler and
propagates, so a library user or pytest's ``caplog`` sees the records and a plain run prints
nothing new. Progress and results a user reads stay on stdout; this log goes to stderr.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["COMPONENT", "FORMATS", "HEAD", "LOGGER", "configured", "level_for",
           "log_event", "phase"]

COMPONENT = "harness"
HEAD = ("ts", "level", "component", "event", "msg")
FORMATS = ("text", "json")
PLAIN_EVENT = "message"  # the event of a line logged without log_event, as in the Boot Proxy
LOGGER = logging.getLogger(COMPONENT)
LOGGER.addHandler(logging.NullHandler())


def log_event(event: str, msg: str | None = None, *, level: int = logging.INFO,
              **fields: Any) -> None:
    """Log ``event`` with ``fields``; ``msg`` is the human sentence (the event's name by
    default, as in the other two logs). Cheap when the level is off. A field named like
    the head is the caller's bug: ValueError, as in the Control Plane's log."""
    clash = set(HEAD).intersection(fields)
    if clash:
        raise ValueError(f"log fields {sorted(clash)} would overwrite the line's own")
    if LOGGER.isEnabledFor(level):
        LOGGER.log(level, msg or event, extra={"event": event, "fields": fields})


def record_doc(record: logging.LogRecord) -> dict[str, Any]:
    """The head and fields of ``record`` as one dict (``exc`` added for a traceback)."""
    event = getattr(record, "event", None)
    fields = getattr(record, "fields", None)
    doc: dict[str, Any] = {
        "ts": round(record.created, 6),
        "level": record.levelname.lower(),
        "component": COMPONENT,
        "event": event if isinstance(event, str) and event else PLAIN_EVENT,
        "msg": record.getMessage(),
    }
    for key, value in (fields if isinstance(fields, dict) else {}).items():
        doc[f"field_{key}" if key in doc else key] = value
    return doc


class JsonFormatter(logging.Formatter):
    """One JSON object per line, head first (the Boot Proxy's and Control Plane's shape)."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a single JSON line."""
        doc = record_doc(record)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``12:00:01.234 info    component_ready   site-dhcp ready in 0.31 s  name=site-dhcp``:
    the same content as JSON, for a person reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line of text (a traceback, if any, below it)."""
        doc = record_doc(record)
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        head = f"{clock}.{int(record.msecs):03d} {doc['level']:<7} {doc['event']:<17}"
        text = head if doc["msg"] == doc["event"] else f"{head} {doc['msg']}"
        extra = "  ".join(f"{k}={v}" for k, v in doc.items() if k not in HEAD)
        line = f"{text}  {extra}" if extra else text
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is at the time of the line (pytest's
    capture replaces it between tests; a handler bound to an old one would write to a
    closed file)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the stream is always the current sys.stderr."""


def level_for(verbosity: int) -> int:
    """``-v`` count to a level: warnings only by default, -v info, -vv debug."""
    return logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG


@contextlib.contextmanager
def configured(fmt: str = "text", verbosity: int = 0) -> Iterator[logging.Handler]:
    """Within the block, the harness logs at :func:`level_for` ``verbosity`` to stderr in
    ``fmt`` (``text`` or ``json``); the logger is restored afterwards, so an in-process
    ``main()`` (a test) leaves no handler behind."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: use one of {', '.join(FORMATS)}")
    handler = _Stderr()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handlers, level, propagate = LOGGER.handlers[:], LOGGER.level, LOGGER.propagate
    LOGGER.handlers[:] = [handler]
    LOGGER.setLevel(level_for(verbosity))
    LOGGER.propagate = False
    try:
        yield handler
    finally:
        LOGGER.handlers[:] = handlers
        LOGGER.setLevel(level)
        LOGGER.propagate = propagate


@contextlib.contextmanager
def phase(name: str, **fields: Any) -> Iterator[None]:
    """Log ``phase_start`` and ``phase_end`` (with its ``seconds``) around the block, or
    ``phase_failed`` with the error when it raises (the error still propagates)."""
    log_event("phase_start", f"{name} ...", phase=name, **fields)
    started = time.monotonic()
    try:
        yield
    except BaseException as exc:
        seconds = round(time.monotonic() - started, 3)
        log_event("phase_failed", f"{name} failed after {seconds} s: {exc}",
                  level=logging.WARNING, phase=name, seconds=seconds,
                  error=type(exc).__name__, **fields)
        raise
    seconds = round(time.monotonic() - started, 3)
    log_event("phase_end", f"{name} done in {seconds} s", phase=name, seconds=seconds, **fields)
