"""A Control Plane / WAN outage at the iPXE script step: a KNOWN machine (in the proxy's
MAC filter, kept from the last sync) that asks for its script while the Control Plane
cannot give it is answered 503 with Retry-After — "come back", never a guessed script
and never "not found" — while an unknown MAC is still refused (404) without the Control
Plane being asked. A Control Plane that answers 5xx is an outage too; one that answers
a 4xx other than 403/404 is not, and is not retried."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from bootproxy.httpboot import ControlPlaneSource, HttpBootConfig, HttpBootServer

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

KNOWN, STRANGER = "02:00:00:00:00:01", "02:00:00:00:00:02"


JsonHttp = Callable[[Callable[[str, Mapping[str, str]], tuple[int, object]]], str]


def _cp(json_http: JsonHttp, status: int) -> tuple[str, list[str]]:
    """A loopback Control Plane (the ``json_http`` fixture) that answers every request with
    ``status``; returns its URL and the paths it was asked for."""
    asked: list[str] = []

    def answer(path: str, headers: Mapping[str, str]) -> tuple[int, object]:
        asked.append(path)
        return status, {"detail": "no"}

    return json_http(answer), asked


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
        tmp_path: Path, json_http: JsonHttp) -> None:
    url, asked = _cp(json_http, 503)
    reply = _ask(tmp_path, url, STRANGER)
    assert reply.status_code == 404 and "Retry-After" not in reply.headers
    assert asked == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_failing_control_plane_is_an_outage_for_a_known_machine(
        tmp_path: Path, json_http: JsonHttp, status: int) -> None:
    url, asked = _cp(json_http, status)
    reply = _ask(tmp_path, url, KNOWN)
    assert asked == [f"/api/v1/machines/{KNOWN}/boot"]
    assert reply.status_code == 503 and int(reply.headers["Retry-After"]) > 0


def test_a_control_plane_that_says_no_is_not_retried(tmp_path: Path,
                                                      json_http: JsonHttp) -> None:
    url, _ = _cp(json_http, 409)
    reply = _ask(tmp_path, url, KNOWN)
    assert reply.status_code == 502 and "Retry-After" not in reply.headers
