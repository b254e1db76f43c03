"""A Control Plane / WAN outage at the iPXE script step: a KNOWN machine (in the proxy's
MAC filter, kept from the last sync) that asks for its script while the Control Plane
cannot give it is answered 503 with Retry-After — "come back", never a guessed script
and never "not found" — while an unknown MAC is still refused (404) without the Control
Plane being asked. A Control Plane that answers 5xx is an outage too; one that answers
a 4xx other than 403/404 is not, and is not retried."""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bootproxy.httpboot import ControlPlaneSource, HttpBootConfig, HttpBootServer

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

KNOWN, STRANGER = "02:00:00:00:00:01", "02:00:00:00:00:02"


class _Cp:
    """A loopback Control Plane that answers every request with ``status``."""

    def __init__(self, status: int) -> None:
        self.asked: list[str] = []
        cp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                cp.asked.append(self.path)
                body = b'{"detail": "no"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def unreachable() -> Iterator[str]:
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def _ask(tmp_path: Path, url: str, mac: str) -> httpx.Response:
    async def go() -> httpx.Response:
        root = tmp_path / "root"
        root.mkdir(exist_ok=True)
        source = ControlPlaneSource(url, "token", timeout=2.0)
        server = HttpBootServer(HttpBootConfig(root=root, cache_dir=tmp_path / "cache",
                                               host="127.0.0.1", port=0), source,
                                allow_mac=lambda m: m == KNOWN)
        await server.start()
        try:
            host, port = server.address
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
                return await client.get(f"/boot/{mac}.ipxe")
        finally:
            await server.stop()
            await source.aclose()

    return asyncio.run(asyncio.wait_for(go(), 30))


def test_a_known_machine_is_told_to_retry_while_the_control_plane_is_unreachable(
        tmp_path: Path, unreachable: str) -> None:
    reply = _ask(tmp_path, unreachable, KNOWN)
    assert reply.status_code == 503
    assert int(reply.headers["Retry-After"]) > 0
    assert "#!ipxe" not in reply.text


def test_an_unknown_machine_is_refused_and_the_control_plane_never_asked(
        tmp_path: Path) -> None:
    cp = _Cp(503)
    try:
        reply = _ask(tmp_path, cp.url, STRANGER)
    finally:
        cp.server.shutdown()
    assert reply.status_code == 404 and "Retry-After" not in reply.headers
    assert cp.asked == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_failing_control_plane_is_an_outage_for_a_known_machine(tmp_path: Path,
                                                                  status: int) -> None:
    cp = _Cp(status)
    try:
        reply = _ask(tmp_path, cp.url, KNOWN)
    finally:
        cp.server.shutdown()
    assert cp.asked == [f"/api/v1/machines/{KNOWN}/boot"]
    assert reply.status_code == 503 and int(reply.headers["Retry-After"]) > 0


def test_a_control_plane_that_says_no_is_not_retried(tmp_path: Path) -> None:
    cp = _Cp(409)
    try:
        reply = _ask(tmp_path, cp.url, KNOWN)
    finally:
        cp.server.shutdown()
    assert reply.status_code == 502 and "Retry-After" not in reply.headers
