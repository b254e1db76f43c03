"""The run's ExitStack: every exit wrapped so that one that raises is recorded, not raised.

A run builds its plan's items one by one and registers each one's stop as it goes;
unwinding calls them in reverse, as ``Lab.teardown`` does its own parts: a ``stop()``
that raises becomes a line in :attr:`Unwinding.stop_errors` and the rest, the lab last,
still goes. The phases the run went through are timed here too, for the reports.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from harness.builder.evidence import describe
from harness.components.base import Component
from harness.logs import phase


class Unwinding:
    """An ExitStack whose exits never raise, and the timed phases of the run using it."""

    def __init__(self, label: str) -> None:
        self.label = label  # the scenario's name, on each phase's log events
        self.stop_errors: list[str] = []
        self.phases: list[tuple[str, float, float]] = []
        self._stack = contextlib.ExitStack()

    def close(self) -> None:
        """Unwind everything built, in reverse; never raises (see :attr:`stop_errors`)."""
        self._stack.close()

    @contextlib.contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        start = time.time()
        try:
            with phase(name, scenario=self.label):
                yield
        finally:
            self.phases.append((name, start, time.time()))

    def _on_exit(self, what: str, stop: Callable[[], Any]) -> None:
        """Call ``stop`` when the stack unwinds; an exception it raises is recorded, and the
        rest of the stack still unwinds."""
        def call() -> None:
            try:
                stop()
            except Exception as exc:
                self.stop_errors.append(f"{what}: {describe(exc)}")
        self._stack.callback(call)

    def start(self, component: Component) -> None:
        """Start ``component``, stopped when the stack unwinds (a failed start too)."""
        self._on_exit(component.name, component.stop)
        component.start()
        component.wait_ready()
