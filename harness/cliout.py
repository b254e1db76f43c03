"""``--json`` output shared by every ``flexlab`` command: one JSON document on stdout whose
first key, ``format``, names its schema (``flexlab.<command>/v<n>``, docs/formats/), so a
consumer can refuse a document it does not know instead of misreading it."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO


def format_name(command: str, version: int = 1) -> str:
    """The ``format`` value of a command's JSON document, e.g. ``flexlab.run/v1``."""
    return f"flexlab.{command}/v{version}"


def document(command: str, body: dict[str, Any], version: int = 1) -> dict[str, Any]:
    """``body`` with the ``format`` key first."""
    return {"format": format_name(command, version), **body}


def emit(command: str, body: dict[str, Any], *, version: int = 1,
         stream: TextIO | None = None) -> None:
    """Print the command's one JSON document (indented, newline-terminated)."""
    out = stream or sys.stdout
    out.write(json.dumps(document(command, body, version), indent=2, default=str) + "\n")
    out.flush()


def error_body(status: int, message: str) -> dict[str, Any]:
    """What ``--json`` prints when a command stops with an error: still one document
    (a consumer parses stdout either way), the message also goes to stderr."""
    return {"ok": False, "exit_status": status, "error": message}
