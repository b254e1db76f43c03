"""The JSON log: store events as lines, and long-polls that end when the proxy hangs up."""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from cp_helpers import site

from controlplane.client import ControlPlaneClient
from harness.components.controlplane_process import ControlPlaneProcess

pytestmark = pytest.mark.unit


def wait_for_line(cp: ControlPlaneProcess, match: dict[str, Any],
                  timeout: float = 5.0) -> dict[str, Any]:
    """The first JSON log line containing every key/value of `match`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in cp.logs():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if all(record.get(k) == v for k, v in match.items()):
                return dict(record)
        time.sleep(0.02)
    raise AssertionError(f"no log line with {match}; last lines: {cp.logs()[-5:]}")


def test_store_events_are_logged(cp: ControlPlaneProcess, admin: ControlPlaneClient) -> None:
    s = site(admin)
    record = wait_for_line(cp, {"event": "store_event", "kind": "machine.created",
                                "subject": s["macs"][0]})
    assert record["component"] == "controlplane" and record["data"]["cluster"] == s["cluster"]


def test_long_poll_ends_when_the_proxy_hangs_up(cp: ControlPlaneProcess,
                                               admin: ControlPlaneClient) -> None:
    s = site(admin)
    with admin.with_token(s["proxy_token"]) as proxy:
        _, _, etag = proxy.assignments(s["proxy"])
    where = urlsplit(cp.url)
    path = f"/api/v1/proxies/{s['proxy']}/assignments?wait=30&probe={time.monotonic_ns()}"
    request = (f"GET {path} HTTP/1.1\r\nHost: {where.netloc}\r\n"
               f"Authorization: Bearer {s['proxy_token']}\r\nIf-None-Match: {etag}\r\n\r\n")
    started = time.monotonic()
    with socket.create_connection((where.hostname, where.port), timeout=5) as conn:
        conn.sendall(request.encode())
        conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            conn.recv(1)  # the poll is parked: nothing comes back yet
    record = wait_for_line(cp, {"event": "request", "route": "assignments", "status": 304,
                                "path": path.split("?")[0]}, timeout=5.0)
    assert record["ms"] < 5000 and time.monotonic() - started < 6
