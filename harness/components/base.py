"""The life every lab component shares (DESIGN.md: start, wait_ready, stop, logs, artifacts)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from harness.errors import ComponentError
from harness.lab.process import LabProcess
from harness.wait import wait_until


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

    def wait_for_process(self, holds: Callable[[int], bool], what: str,
                         timeout: float) -> None:
        """Wait until ``holds(pid)`` is true of this component's own process (its sockets,
        matched by PID, so another process on the port never counts); fail at once with
        the log tail if the process exits first. ``what`` reads "bind UDP 53" etc."""
        proc = self.process
        assert proc is not None, "start() first"

        def probe() -> bool:
            if not proc.running():
                raise ComponentError(f"{self.name} exited before it could {what}:\n"
                                     + proc.log_tail())
            return holds(proc.pid)

        wait_until(probe, timeout=timeout, what=f"{self.name} to {what}",
                   evidence=proc.log_tail)

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
