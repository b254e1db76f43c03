"""Run `python -m bootproxy` as a child process and wait for its ready line.

For the harness's `boot_proxy` component and the sim tests: the proxy runs as
in production (a plain process, inside a network namespace through `prefix`,
e.g. `["ip", "netns", "exec", NS]`); readiness is its `{"event": "ready"}`
line on stdout; a failed start raises `ListenerError` with the log tail.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from bootproxy.errors import ListenerError

__all__ = ["BootProxyProcess"]


class BootProxyProcess:
    """One Boot Proxy child process; a context manager that always stops it.

    `args` are `flexlab-bootproxy` flags; stderr (the JSON log) goes to
    `log_path` so it survives the process for evidence.
    """

    def __init__(
        self,
        args: Sequence[str],
        log_path: Path,
        *,
        prefix: Sequence[str] = (),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = [*prefix, sys.executable, "-m", "bootproxy", *args]
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self.ready: dict[str, Any] | None = None
        self._log: IO[str] | None = None

    def start(self) -> BootProxyProcess:
        """Spawn the process (stdout piped for the ready line, stderr to `log_path`)."""
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=self._log, text=True,
            env=self.env, cwd=self.cwd,
        )
        return self

    def wait_ready(self, timeout: float = 20.0) -> dict[str, Any]:
        """Wait for the ready line and return it; raise with the log tail on exit or timeout."""
        assert self.proc is not None and self.proc.stdout is not None, "start() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ListenerError(self._why(f"exited with {self.proc.returncode}"))
            readable, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if not readable:
                continue
            line = self.proc.stdout.readline()
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == "ready":
                self.ready = record
                return record
        raise ListenerError(self._why(f"no ready line within {timeout:g} s"))

    def log_tail(self, lines: int = 30) -> str:
        """The last `lines` lines of the proxy's JSON log."""
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _why(self, what: str) -> str:
        return (
            f"Boot Proxy not ready ({what}); command: {' '.join(self.argv)}\n"
            f"last log lines ({self.log_path}):\n{self.log_tail()}"
        )

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
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def __enter__(self) -> BootProxyProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
