"""The JSON log: one schema with the Boot Proxy's (ts, level, component, event, msg + fields),
store events as lines, and long-polls that end when the proxy hangs up."""

from __future__ import annotations

import io
import json
import logging
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from cp_helpers import site

from bootproxy.logs import JsonFormatter
from controlplane.client import ControlPlaneClient
from controlplane.logs import JsonLog
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


HEAD = ["ts", "level", "component", "event", "msg"]


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    """What a JsonLog wrote to `stream`, one record a line."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_starts_with_the_shared_head() -> None:
    stream = io.StringIO()
    log = JsonLog(stream, lab="lab7")
    log("seeded", file="site.yaml", revision=3)
    [line] = lines_of(stream)
    assert list(line)[:6] == [*HEAD, "lab"]
    assert line["level"] == "info" and line["component"] == "controlplane"
    assert line["event"] == line["msg"] == "seeded"
    assert line["file"] == "site.yaml" and line["revision"] == 3
    assert abs(line["ts"] - time.time()) < 5


def test_level_says_what_needs_a_look() -> None:
    stream = io.StringIO()
    log = JsonLog(stream)
    log("request", status=200)
    log("request", status=404)
    log("request", status=503)
    log("request", status=0)  # the app raised before it answered
    log("error", error="configuration error", detail="bad flag")
    log("fault_set", endpoint="time", down=True)
    log("store_event", kind="machine.ready", level="debug")
    levels = [line["level"] for line in lines_of(stream)]
    assert levels == ["info", "info", "error", "error", "error", "warning", "debug"]


def test_a_field_may_not_overwrite_the_head() -> None:
    log = JsonLog(io.StringIO())
    with pytest.raises(ValueError, match="overwrite"):
        log("request", msg="hello")
    with pytest.raises(ValueError, match="log level"):
        log("request", level="loud")


def test_same_field_names_as_the_boot_proxy() -> None:
    proxy_record = logging.LogRecord("bootproxy.app", logging.WARNING, __file__, 1, "ready",
                                     None, None)
    proxy_record.fields = {"event": "ready"}
    proxy_line = json.loads(JsonFormatter(proxy="bp1").format(proxy_record))
    stream = io.StringIO()
    JsonLog(stream)("ready", level="warning")
    [cp_line] = lines_of(stream)
    shared = set(proxy_line) - {"proxy"}
    assert shared == set(HEAD) and shared <= set(cp_line)
    for key in shared - {"ts", "component"}:
        assert cp_line[key] == proxy_line[key], key


def test_the_service_logs_only_schema_lines(cp: ControlPlaneProcess,
                                            admin: ControlPlaneClient) -> None:
    site(admin)
    wait_for_line(cp, {"event": "request", "route": "machines_create"})
    records = [json.loads(line) for line in cp.logs()]
    assert records and all(list(r)[:5] == HEAD for r in records), records[:3]
    ready = next(r for r in records if r["event"] == "ready")
    assert ready["level"] == "info" and ready["url"] == cp.url


def test_store_events_are_logged(cp: ControlPlaneProcess, admin: ControlPlaneClient) -> None:
    s = site(admin)
    record = wait_for_line(cp, {"event": "store_event", "kind": "machine.created",
                                "subject": s["macs"][0]})
    assert record["component"] == "controlplane" and record["data"]["cluster"] == s["cluster"]
    assert record["level"] == "info" and record["msg"] == "store_event"


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
