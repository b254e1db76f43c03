"""Readiness waits that poll a real condition and raise with evidence on timeout."""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

from harness.errors import WaitTimeout

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    evidence: Callable[[], str] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy, and return that.

    On timeout raise :class:`WaitTimeout` naming ``what`` and carrying
    ``evidence()`` (a log tail, a packet summary) so a failure explains itself.
    ``interval`` is the polling period of the probe, never a readiness delay.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = ""
            if evidence is not None:
                try:
                    detail = "\n--- evidence ---\n" + evidence()
                except Exception as exc:  # evidence is best effort; the timeout is the error
                    detail = f"\n(evidence unavailable: {exc})"
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {what}{detail}")
        time.sleep(interval)


class StartedAndReady(abc.ABC):
    """``with thing:`` starts it, waits until it is ready, and always stops it.

    A failed readiness wait stops what was started before the error propagates, so
    nothing outlives a failed start. Lab components and single processes share this.
    """

    @abc.abstractmethod
    def start(self) -> Any:
        """Launch it."""

    @abc.abstractmethod
    def wait_ready(self, timeout: float = 10.0) -> Any:
        """Block until it really serves (each kind has its own default timeout); raise
        with evidence otherwise."""

    @abc.abstractmethod
    def stop(self) -> Any:
        """Stop it; idempotent."""

    def __enter__(self) -> Self:
        try:  # an interrupt raised as start() returns still finds it to stop
            self.start()
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
