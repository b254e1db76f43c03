"""A minimal stand-in for the Control Plane's node endpoints, for node image boot tests.

Run as ``python stub_cp.py ADDR PORT JOIN_TOKEN CALLS_FILE`` (inside a test netns).
It serves GET /api/v1/time, POST /api/v1/nodes/register (join token) and
POST /api/v1/nodes/{mac}/ready (node token) per docs/CONTROLPLANE-API.md, and
appends every call as one JSON line to CALLS_FILE so the test can check them.
A join token starting with ``reject-`` makes registration answer Rejected.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NODE_TOKEN = "node-token-stub"


def make_handler(join_token: str, calls: Path) -> type[BaseHTTPRequestHandler]:
    """Build a handler bound to this run's join token and call log."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _reply(self, code: int, obj: object) -> None:
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _record(self, body: bytes) -> None:
            entry = {"method": self.command, "path": self.path,
                     "auth": self.headers.get("Authorization"),
                     "body": body.decode(errors="replace")}
            with calls.open("a") as fh:
                fh.write(json.dumps(entry) + "\n")

        def do_GET(self) -> None:
            self._record(b"")
            if self.path == "/api/v1/time":
                self._reply(200, {"unix": time.time()})
            else:
                self._reply(404, {"error": "not found", "detail": self.path})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self._record(body)
            auth = self.headers.get("Authorization")
            if self.path == "/api/v1/nodes/register":
                if auth != f"Bearer {join_token}":
                    self._reply(403, {"error": "forbidden", "detail": "bad join token"})
                    return
                facts = json.loads(body)["facts"]
                if join_token.startswith("reject-"):
                    # Rejection is data (HTTP 200), as in the API contract.
                    reason = f"memory_bytes {facts['memory_bytes']} < 3000000000"
                    self._reply(200, {"state": "Rejected", "reasons": [reason]})
                    return
                self._reply(200, {"state": "Registered", "node_token": NODE_TOKEN})
            elif self.path.startswith("/api/v1/nodes/") and self.path.endswith("/ready"):
                if auth != f"Bearer {NODE_TOKEN}":
                    self._reply(403, {"error": "forbidden", "detail": "bad node token"})
                    return
                self._reply(200, {"state": "Ready"})
            else:
                self._reply(404, {"error": "not found", "detail": self.path})

    return Handler


if __name__ == "__main__":
    addr, port, token, calls_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    server = ThreadingHTTPServer((addr, port), make_handler(token, Path(calls_file)))
    print(f"listening {addr}:{port}", flush=True)
    server.serve_forever()
