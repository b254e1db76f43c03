"""The life every lab component shares (DESIGN.md: start, wait_ready, stop, logs, artifacts)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import ComponentError
from harness.lab.process import LabProcess
from harness.lab.waits import Condition, Holds
from harness.wait import StartedAndReady


class Component(StartedAndReady):
    """A process-backed lab component.

    ``start`` launches it, ``wait_ready`` blocks on a real readiness probe and
    raises with the log tail on timeout, ``stop`` leaves nothing running.
    As a context manager it starts, waits and always stops.
    """

    name: str = "component"
    process: LabProcess | None = None

    @abc.abstractmethod
    def start(self) -> None:
        """Launch the component's process(es)."""

    @abc.abstractmethod
    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the component really serves; raise WaitTimeout with evidence."""

    def wait_for(self, *conditions: Condition, timeout: float) -> list[Any]:
        """Wait for ``conditions`` (ready line, sockets held by this PID, HTTP 200, log
        line) on this component's own process, in order; return their results. Fails at
        once with the log tail if the process exits first."""
        if self.process is None:
            raise ComponentError(f"{self.name}: start() first")
        return self.process.wait(*conditions, timeout=timeout)

    def wait_for_process(self, holds: Callable[[int], bool], what: str,
                         timeout: float) -> None:
        """Wait until ``holds(pid)`` is true of this component's own process (its sockets,
        matched by PID, so another process on the port never counts). ``what`` reads
        "bind UDP 53" etc."""
        self.wait_for(Holds(holds, what), timeout=timeout)

    def stop(self) -> None:
        """Stop the process by PID; idempotent."""
        if self.process is not None:
            self.process.stop()

    def logs(self) -> str:
        """Everything the component printed."""
        return self.process.log_text() if self.process is not None else ""

    def artifacts(self) -> list[Path]:
        """Files a report should attach (logs by default)."""
        return [self.process.log_path] if self.process is not None else []
