"""A tiny stand-in Control Plane on loopback for the Boot Proxy's sync tests.

Serves only what the proxy calls (assignments with ETag + long-poll, heartbeat,
conflicts) and can be switched to answer garbage or 500s. Replace with the
real mock in controlplane/ once it exists.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN = "proxy-token-123"


class StandInCP:
    """Thread-backed HTTP server; `set_assignments` bumps the revision and wakes long-polls."""

    def __init__(self, proxy: str = "bp1") -> None:
        self.proxy = proxy
        self.revision = 0
        self.assignments: list[dict[str, str]] = []
        self.mode = "ok"  # ok | garbage | error
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []
        self._cond = threading.Condition()
        cp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _auth(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(401, b'{"error":"unauthorized"}')
                    return False
                return True

            def do_GET(self) -> None:
                url = urlparse(self.path)
                cp.calls.append(("GET", url.path, dict(self.headers), None))
                if url.path != f"/api/v1/proxies/{cp.proxy}/assignments":
                    self._send(404, b"{}")
                    return
                if not self._auth():
                    return
                if cp.mode == "error":
                    self._send(500, b'{"error":"down"}')
                    return
                wait = float(parse_qs(url.query).get("wait", ["0"])[0])
                inm = self.headers.get("If-None-Match")
                with cp._cond:
                    cp._cond.wait_for(lambda: inm != cp.etag, timeout=wait)
                    etag = cp.etag
                    doc = {"revision": str(cp.revision), "assignments": list(cp.assignments)}
                if inm == etag:
                    self._send(304, b"", {"ETag": etag})
                    return
                if cp.mode == "garbage":
                    self._send(200, b'{"revision": 1, "assignments": [{"mac": 5}]}',
                               {"ETag": '"junk"'})
                    return
                self._send(200, json.dumps(doc).encode(), {"ETag": etag})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                cp.calls.append(("POST", self.path, dict(self.headers), body))
                if not self._auth():
                    return
                self._send(200, b'{"ok":true}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def etag(self) -> str:
        return f'"rev-{self.revision}"'

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def set_assignments(self, macs: list[str]) -> None:
        with self._cond:
            self.revision += 1
            self.assignments = [
                {"mac": m, "cluster": "c1", "hostname": f"n{i}", "role": "worker",
                 "profile": "p"}
                for i, m in enumerate(macs)
            ]
            self._cond.notify_all()

    def posts(self, path: str) -> list[Any]:
        return [body for method, p, _, body in self.calls if method == "POST" and p == path]

    def __enter__(self) -> StandInCP:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._cond.notify_all()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
