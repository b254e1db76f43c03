"""Fixtures shared by unit tests of several areas."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture
def loopback_http() -> Iterator[Callable[[type[BaseHTTPRequestHandler]], str]]:
    """``loopback_http(HandlerClass) -> "http://127.0.0.1:PORT"``: a real HTTP server on
    loopback for the test (a fake Control Plane, a stand-in BMC); all shut down after it."""
    servers: list[ThreadingHTTPServer] = []

    def start(handler: type[BaseHTTPRequestHandler]) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    try:
        yield start
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
