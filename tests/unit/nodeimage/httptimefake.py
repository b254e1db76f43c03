"""A Control Plane's ``GET /api/v1/time`` on loopback, and a PATH of busybox applets,
for running the agent's clock functions on the host as they run in the image."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from json_reply import send_json


class TimeServer(ThreadingHTTPServer):
    """Answers any GET with ``{"unix": ...}``, its clock ``ahead`` s off this host's; the
    n-th answer leaves ``delays[n]`` s after the clock was read (the last delay repeats).
    ``served`` counts the answers."""

    def __init__(self, ahead: float, delays: list[float]) -> None:
        super().__init__(("127.0.0.1", 0), _TimeHandler)
        self.ahead = ahead
        self.delays = delays
        self.served = 0

    @property
    def url(self) -> str:
        """The Control Plane's base URL (``flexlab.cp``)."""
        return f"http://127.0.0.1:{self.server_address[1]}"


class _TimeHandler(BaseHTTPRequestHandler):
    server: TimeServer

    def do_GET(self) -> None:
        srv = self.server
        delay = srv.delays[min(srv.served, len(srv.delays) - 1)]
        srv.served += 1
        doc = {"unix": time.time() + srv.ahead}
        time.sleep(delay)  # the answer is slow after the clock was read: the worst case
        send_json(self, 200, doc)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def time_server(ahead: float, delays: list[float]) -> Iterator[TimeServer]:
    """A running :class:`TimeServer`, shut down on exit."""
    srv = TimeServer(ahead, delays)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def busybox_path(tmp_path: Path) -> str:
    """A PATH whose wget, awk, sed, adjtimex, timeout, date and sleep are busybox's, as
    in the image."""
    busybox = shutil.which("busybox")
    assert busybox
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for applet in ("wget", "awk", "sed", "adjtimex", "timeout", "grep", "tail", "tr", "cat",
                   "date", "sleep", "rm"):
        (bindir / applet).symlink_to(busybox)
    return str(bindir)
