"""``python -m bootproxy`` as one child process, on this host or in a namespace.

For LocalBoot (certify, site-check --serve) and the Boot Proxy's own sim tests: the
proxy runs as in production, through the harness's one process runner
(:class:`~harness.lab.process.LabProcess`); readiness is its ``{"event": "ready"}``
line, parsed once; a failed start raises with the log tail.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.lab.process import LabProcess
from harness.lab.waits import Condition, ReadyLine


class BootProxyProcess(LabProcess):
    """One Boot Proxy child process; as a context manager it starts, waits and always stops.

    ``args`` are ``flexlab-bootproxy`` flags; stdout (the ready line) and stderr (the JSON
    log) go to ``log_path``, which outlives the process as evidence.
    """

    def __init__(self, args: Sequence[str], log_path: Path, *, netns: str | None = None,
                 env: dict[str, str] | None = None, cwd: Path | None = None,
                 name: str = "bootproxy") -> None:
        super().__init__(name, [sys.executable, "-m", "bootproxy", *args], log_path, netns,
                         env=env, cwd=cwd)
        self.ready: dict[str, Any] | None = None

    def wait_ready(self, timeout: float = 20.0, *more: Condition) -> dict[str, Any]:
        """Wait for the ready line, then ``more`` (sockets, a MAC list); return the line."""
        self.ready = self.wait(ReadyLine(), *more, timeout=timeout)[0]
        return self.ready
