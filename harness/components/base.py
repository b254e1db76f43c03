"""The life every lab component shares (DESIGN.md: start, wait_ready, stop, logs, artifacts)."""

from __future__ import annotations

import abc
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import ComponentError
from harness.lab.process import LabProcess
from harness.lab.waits import Condition, Holds
from harness.logs import log_event
from harness.wait import StartedAndReady

# the life-cycle methods whose calls are logged, and their events (harness.logs)
LOGGED = {"start": "component_start", "wait_ready": "component_ready",
          "stop": "component_stop"}


def logged(method: Callable[..., Any], event: str) -> Callable[..., Any]:
    """``method`` logging ``event`` when it returns (``component_failed``, a warning, when
    it raises). An override that calls ``super()`` logs once: only the outermost call."""
    @functools.wraps(method)
    def wrapper(self: Component, *args: Any, **kwargs: Any) -> Any:
        active: set[str] = self.__dict__.setdefault("_logging", set())
        if event in active:
            return method(self, *args, **kwargs)
        active.add(event)
        if event == "component_start":
            self.__dict__["_log_started"] = time.monotonic()
        try:
            result = method(self, *args, **kwargs)
        except Exception as exc:
            log_event("component_failed", f"{self.name}: {event} failed: {exc}",
                      level=logging.WARNING, **self.log_fields(), during=event,
                      error=type(exc).__name__)
            raise
        finally:
            active.discard(event)
        log_event(event, f"{self.name}: {event.removeprefix('component_')}",
                  **self.log_fields())
        return result
    return wrapper


class Component(StartedAndReady):
    """A process-backed lab component.

    ``start`` launches it, ``wait_ready`` blocks on a real readiness probe and
    raises with the log tail on timeout, ``stop`` leaves nothing running.
    As a context manager it starts, waits and always stops.
    """

    name: str = "component"
    process: LabProcess | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every component logs its start, readiness and stop (harness.logs), whichever
        class defines them: the subclass's own methods are wrapped as it is created."""
        super().__init_subclass__(**kwargs)
        for name, event in LOGGED.items():
            if name in cls.__dict__:
                setattr(cls, name, logged(cls.__dict__[name], event))

    def log_fields(self) -> dict[str, Any]:
        """What each life-cycle event says of this component: its name and class, its
        process's PID when it has one, seconds since start()."""
        fields: dict[str, Any] = {"name": self.name, "kind": type(self).__name__}
        proc = self.process
        if proc is not None and proc.running():
            fields["pid"] = proc.pid
        if (started := self.__dict__.get("_log_started")) is not None:
            fields["seconds"] = round(time.monotonic() - started, 3)
        return fields

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

    stop = logged(stop, "component_stop")

    def logs(self) -> str:
        """Everything the component printed."""
        return self.process.log_text() if self.process is not None else ""

    def artifacts(self) -> list[Path]:
        """Files a report should attach (logs by default)."""
        return [self.process.log_path] if self.process is not None else []
