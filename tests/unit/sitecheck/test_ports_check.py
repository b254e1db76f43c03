"""The outbound-ports check against real loopback listeners: open, refused, timed out."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.components.web_listeners import HttpListeners
from harness.sitecheck.model import CheckVerdict, SiteCheckOptions, SiteContext
from harness.sitecheck.ports_check import check_outbound, split_server, target_host

pytestmark = pytest.mark.unit


def _ctx(**kw: object) -> SiteContext:
    opts = SiteCheckOptions(iface="lo", connect_timeout=1.0, **kw)  # type: ignore[arg-type]
    return SiteContext(options=opts, iface_mac="00:00:00:00:00:00", iface_ipv4=None)


@pytest.fixture
def listeners() -> Iterator[HttpListeners]:
    web = HttpListeners([0, 0], "127.0.0.1").start()
    try:
        yield web
    finally:
        web.close()


def _free_port() -> int:
    """A port nothing listens on (bound, then closed: connects are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_split_server_forms() -> None:
    assert split_server("10.0.0.5", 53) == ("10.0.0.5", 53)
    assert split_server("10.0.0.5:5353", 53) == ("10.0.0.5", 5353)
    assert split_server("[fd00::1]:54", 53) == ("fd00::1", 54)
    assert split_server("fd00::1", 53) == ("fd00::1", 53)


def test_target_from_control_plane_or_port_target() -> None:
    assert target_host(_ctx(control_plane="https://cp.example:8443/x"))[0] == "cp.example"
    assert target_host(_ctx(port_target="10.1.1.1"))[0] == "10.1.1.1"
    assert target_host(_ctx(port_target="http://h.example"))[0] == "h.example"
    assert target_host(_ctx()) is None


def test_no_target_skips() -> None:
    [result] = check_outbound(_ctx())
    assert result.verdict is CheckVerdict.SKIP and "--control-plane" in result.summary


def test_open_and_refused_ports(listeners: HttpListeners) -> None:
    closed = _free_port()
    results = check_outbound(_ctx(port_target="127.0.0.1", ports=[*listeners.ports, closed]))
    verdicts = {r.data["port"]: r.verdict for r in results}
    assert verdicts == {listeners.ports[0]: CheckVerdict.PASS,
                        listeners.ports[1]: CheckVerdict.PASS, closed: CheckVerdict.WARN}
    refused = next(r for r in results if r.data["port"] == closed)
    assert "refused" in refused.summary and "nothing listens" in refused.summary


def test_timeout_is_a_fail_saying_filtered() -> None:
    # a listener whose accept queue is full: the kernel drops further SYNs, so the
    # connect really times out, as behind a firewall that drops packets
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue (backlog 0 admits one or two)
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            fillers.append(c)
        [result] = check_outbound(_ctx(port_target="127.0.0.1", ports=[port]))
    finally:
        for c in fillers:
            c.close()
        srv.close()
    assert result.verdict is CheckVerdict.FAIL
    assert result.summary == f"port {port} to 127.0.0.1: timed out (filtered?)"


class _FakeCp(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        body = json.dumps({"status": "ok" if self.status == 200 else "down"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("status,verdict", [(200, CheckVerdict.PASS), (503, CheckVerdict.FAIL)])
def test_healthz_with_control_plane_url(status: int, verdict: CheckVerdict) -> None:
    handler = type("H", (_FakeCp,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        results = check_outbound(_ctx(control_plane=f"http://127.0.0.1:{port}", ports=[port]))
    finally:
        server.shutdown()
        server.server_close()
    by_name = {r.name: r for r in results}
    assert by_name[f"outbound.tcp{port}"].verdict is CheckVerdict.PASS
    assert by_name["outbound.healthz"].verdict is verdict


def test_passive_connects_nowhere(listeners: HttpListeners) -> None:
    [result] = check_outbound(_ctx(port_target="127.0.0.1", ports=listeners.ports,
                                   passive=True))
    assert result.verdict is CheckVerdict.SKIP
