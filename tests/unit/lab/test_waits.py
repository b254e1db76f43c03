"""The one process runner on this host (netns=None) and its composable readiness conditions.

Real child processes, no root: each condition passes when its fact is true of *this*
process, and a failure says what was seen (the log tail, the last HTTP answer).
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from harness.errors import ComponentError, WaitTimeout
from harness.lab.process import LabProcess
from harness.lab.waits import HttpOk, LogLine, ReadyLine, TcpListening, UdpBound

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

# binds UDP and TCP on ephemeral ports, prints them in a ready line, serves HTTP 200/418
SERVER = r"""
import json, socket, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("127.0.0.1", 0))
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/ok" else 418); self.end_headers()
        self.wfile.write(b'{"assignments": 2}')
    def log_message(self, *a): pass
http = HTTPServer(("127.0.0.1", 0), H)
print("starting up", flush=True)
print(json.dumps({"event": "ready", "udp": udp.getsockname()[1],
                  "tcp": http.server_address[1]}), flush=True)
http.serve_forever()
"""


def _server(tmp_path: Path, name: str = "srv") -> LabProcess:
    return LabProcess(name, [sys.executable, "-c", SERVER], tmp_path / f"{name}.log")


def test_ready_line_then_own_sockets_then_http(tmp_path: Path) -> None:
    with _server(tmp_path) as proc:
        ready, line = proc.wait(ReadyLine(), LogLine(r"^starting (\w+)"), timeout=20)
        assert ready["event"] == "ready" and line.group(1) == "up"
        url = f"http://127.0.0.1:{ready['tcp']}/ok"
        results = proc.wait(UdpBound(ready["udp"]), TcpListening(ready["tcp"]),
                            HttpOk(url, accept=lambda r: r.json()["assignments"] == 2),
                            timeout=20)
        assert results == [True, True, True]


def test_a_socket_of_another_process_never_counts(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mine, _server(tmp_path) as proc:
        mine.bind(("127.0.0.1", 0))
        proc.wait(ReadyLine(), timeout=20)
        with pytest.raises(WaitTimeout, match=r"srv to bind UDP \d+"):
            proc.wait(UdpBound(mine.getsockname()[1]), timeout=0.5)


def test_http_timeout_names_the_last_answer(tmp_path: Path) -> None:
    with _server(tmp_path) as proc:
        ready = proc.wait(ReadyLine(), timeout=20)[0]
        with pytest.raises(WaitTimeout) as info:
            proc.wait(HttpOk(f"http://127.0.0.1:{ready['tcp']}/teapot"), timeout=0.5)
    assert "last seen: GET" in str(info.value) and "HTTP 418" in str(info.value)
    assert "starting up" in str(info.value)  # the log tail is the rest of the evidence


def test_exit_before_ready_fails_at_once_with_status_and_log(tmp_path: Path) -> None:
    script = "import sys; print('no config file here'); sys.exit(3)"
    proc = LabProcess("broken", [sys.executable, "-c", script], tmp_path / "broken.log")
    with proc, pytest.raises(ComponentError) as info:
        proc.wait(ReadyLine(), timeout=30)
    text = str(info.value)
    assert "broken exited with status 3" in text and "no config file here" in text


def test_a_last_line_printed_just_before_exit_still_counts(tmp_path: Path) -> None:
    script = 'print(\'{"event": "ready", "port": 1}\')'
    proc = LabProcess("brief", [sys.executable, "-c", script], tmp_path / "brief.log")
    with proc:
        assert proc.wait(ReadyLine(), timeout=20)[0]["port"] == 1


def test_a_restart_waits_for_its_own_ready_line(tmp_path: Path) -> None:
    log = tmp_path / "same.log"
    with LabProcess("first", [sys.executable, "-c", 'print(\'{"event": "ready"}\')'],
                    log) as first:
        first.wait(ReadyLine(), timeout=20)
    again = LabProcess("again", [sys.executable, "-c", "import time; time.sleep(30)"], log)
    with again, pytest.raises(WaitTimeout):
        again.wait(ReadyLine(), timeout=0.5)  # the earlier run's line is not this run's
    assert '"ready"' in again.log_text()  # the whole log is still kept as evidence


def test_polling_http_builds_no_tls_context_per_poll(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx builds its default TLS context (parsing its whole CA bundle) for
    each client made with verify=True, even for http://. Polls reuse one context."""
    import httpx

    import controlplane.client as cp_client
    built: list[object] = []
    real = httpx.create_ssl_context

    def counting(*args: object, **kwargs: object) -> object:
        if kwargs.get("verify", args[0] if args else True) is True:  # a new default context
            built.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    cp_client.default_trust.cache_clear()
    monkeypatch.setattr(httpx, "create_ssl_context", counting)
    monkeypatch.setattr("httpx._config.create_ssl_context", counting)
    monkeypatch.setattr("httpx._transports.default.create_ssl_context", counting)
    with _server(tmp_path) as proc:
        ready = proc.wait(ReadyLine(), timeout=20)[0]
        url = f"http://127.0.0.1:{ready['tcp']}/ok"
        for _ in range(3):
            proc.wait(HttpOk(url), timeout=20)
        cp_client.ControlPlaneClient(url).close()
        cp_client.ControlPlaneClient(url, "token").close()
    assert len(built) == 1, built
    cp_client.default_trust.cache_clear()


def test_the_shared_context_trusts_what_httpx_trusts() -> None:
    import ssl

    import httpx

    from controlplane.client import default_trust, verify_context
    shared = default_trust()
    assert verify_context(True) is shared and default_trust() is shared
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname
    assert shared.cert_store_stats() == httpx.create_ssl_context().cert_store_stats()
    assert verify_context(False) is False
