"""The JSON answer of the unit tests' loopback HTTP stand-ins (a fake Control Plane, a
BMC, a time server): one place for the status line and headers a client parses."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler


def send_json(handler: BaseHTTPRequestHandler, status: int, doc: object) -> None:
    """Answer ``handler``'s request with ``status`` and ``doc`` as an application/json body
    of exact Content-Length (so a keep-alive client knows where it ends)."""
    body = json.dumps(doc).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
