"""Fixtures shared by unit tests of several areas."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from json_reply import send_json

from controlplane.client import ControlPlaneClient
from harness.components.controlplane_process import ControlPlaneProcess


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


JsonAnswer = Callable[[str, Mapping[str, str]], tuple[int, object]]


@pytest.fixture
def json_http(loopback_http: Callable[[type[BaseHTTPRequestHandler]], str]
              ) -> Callable[[JsonAnswer], str]:
    """``json_http(answer) -> URL``: a loopback server whose every GET is answered by
    ``answer(path, headers) -> (status, body)``, the body sent as JSON (a fake Control
    Plane endpoint in a few lines)."""

    def start(answer: JsonAnswer) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                send_json(self, *answer(self.path, self.headers))

            def log_message(self, *args: object) -> None:
                pass

        return loopback_http(Handler)

    return start


@pytest.fixture(scope="module")
def cp_admin_token() -> str:
    """The admin token the module's Control Plane starts with (a module may override it)."""
    return "admin-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def cp(tmp_path_factory: pytest.TempPathFactory,
       cp_admin_token: str) -> Iterator[ControlPlaneProcess]:
    """A real Control Plane process on an ephemeral loopback port, one per test module;
    stopped on every path."""
    proc = ControlPlaneProcess(tmp_path_factory.mktemp("cp") / "cp.sqlite3", cp_admin_token)
    proc.start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


@pytest.fixture()
def admin(cp: ControlPlaneProcess) -> Iterator[ControlPlaneClient]:
    """An admin client of ``cp``; faults are cleared afterwards so tests stay independent."""
    with ControlPlaneClient(cp.url, cp.admin_token) as client:
        try:
            yield client
        finally:
            client.clear_faults()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test in tests/unit carries the unit tier: one without it is never selected by
    `--tier unit` (tox's unit env, a downstream CI job), so it would silently not run there."""
    here = Path(__file__).parent
    untiered = [item.nodeid for item in items
                if here in Path(str(item.path)).parents
                and item.get_closest_marker("unit") is None]
    if untiered:
        raise pytest.UsageError(
            f"{len(untiered)} test(s) under tests/unit have no unit tier marker "
            f"(add `pytestmark = pytest.mark.unit`): {', '.join(untiered[:5])}")
