"""The life every lab component shares (DESIGN.md: start, wait_ready, stop, logs, artifacts)."""

from __future__ import annotations

import abc
from pathlib import Path
from types import TracebackType

from harness.lab.process import LabProcess


class Component(abc.ABC):
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

    def __enter__(self) -> Component:
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
