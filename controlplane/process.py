"""Run `python -m controlplane` as a child process and wait until it serves.

The harness component and the tests use this: the service runs exactly as in
production (a plain process, runnable inside a network namespace through
`prefix`, e.g. `["ip", "netns", "exec", NS]`), readiness is its own
`{"event": "ready"}` line plus a `/healthz` answer, and a failed start raises
with the log tail attached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from .client import verify_context
from .errors import ControlPlaneError


class StartError(ControlPlaneError):
    """The service did not become ready; the message carries its last log lines."""


class ControlPlaneProcess:
    """One Control Plane child process; a context manager that always stops it."""

    def __init__(self, db: str | Path, admin_token: str, *, listen: str = "127.0.0.1:0",
                 extra_args: list[str] | None = None, prefix: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.argv = [*(prefix or []), sys.executable, "-m", "controlplane",
                     "--listen", listen, "--db", str(db), f"--admin-token={admin_token}",
                     *(extra_args or [])]
        self.admin_token = admin_token
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.lines: deque[str] = deque(maxlen=2000)
        self.ready: dict[str, Any] | None = None
        self._ready_seen = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL from the ready line."""
        if not self.ready:
            raise StartError("the Control Plane is not ready yet; call wait_ready() first")
        return str(self.ready["url"])

    def start(self) -> ControlPlaneProcess:
        """Spawn the process and start reading its stdout."""
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=self.env, bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, name="cp-stdout", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.ready is None:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("event") == "ready":
                    self.ready = record
                    self._ready_seen.set()

    def wait_ready(self, timeout: float = 20.0, verify: bool | str = True) -> str:
        """Wait for the ready line and a 200 from /healthz; return the URL.

        With TLS, `verify` defaults to the lab CA named in the ready line.
        """
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout
        while not self._ready_seen.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise StartError(self._why("no ready line"))
        if verify is True and self.ready and self.ready.get("ca_cert"):
            verify = str(self.ready["ca_cert"])
        context = verify_context(verify)
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0,
                             verify=context).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise StartError(self._why("/healthz did not answer 200"))

    def _why(self, what: str) -> str:
        code = self.proc.poll() if self.proc else None
        state = f"exited with {code}" if code is not None else "still running"
        tail = "\n".join(list(self.lines)[-20:])
        return f"Control Plane not ready ({what}; process {state}). Last output:\n{tail}"

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; return the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout)
        return self.proc.returncode

    def logs(self) -> list[str]:
        """Every line the process printed so far (last 2,000)."""
        return list(self.lines)

    def __enter__(self) -> ControlPlaneProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
