"""Ctrl-C and SIGTERM unwind a command like an exception, so every ``finally`` that stops
a process, tears a lab down or removes a container runs before flexlab exits (with 130,
harness/exitcodes.py). A service manager's or a CI job's SIGTERM is treated as Ctrl-C.

Three traps this module avoids, the first two seen in CI:

- the handler must not outlive the command: a test that calls ``main()`` in-process would
  otherwise leave pytest itself turning SIGTERM into KeyboardInterrupt;
- a process forked from the one that installed it (pyroute2 forks helpers and stops
  them with SIGTERM) must die of the signal as usual, not raise KeyboardInterrupt inside
  a copy of its parent — in a copy of pytest that ran the session's teardown, removing
  the parent's labs;
- a second signal while the first one's clean-up runs (an impatient Ctrl-C, a CI runner
  that sends SIGTERM twice) must not abort that clean-up halfway: only the first signal
  raises; later ones are noted on stderr and ignored. SIGKILL still stops everything.

A fourth, which fits a CI failure: a signal raised while ``subprocess.Popen`` waits for
its child's exec abandons a child that already exists (Python neither kills nor returns
it), and a lab process started in its own session then outlives the command.
:func:`deferred` holds the signal for the few lines that start a process and raises it
once the process is recorded, where the clean-up can find it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM)

# main-thread state shared by interruptible()'s handler and deferred(): how many deferred()
# blocks are open, and the signal that arrived inside them (raised when the last one ends)
_depth = [0]
_pending: list[int] = []


class Interrupted(KeyboardInterrupt):
    """Raised by the first SIGINT or SIGTERM inside :func:`interruptible`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def interruptible(signals: tuple[int, ...] = HANDLED) -> Iterator[None]:
    """Within the block, the first of ``signals`` to reach this process raises
    :class:`Interrupted` (a KeyboardInterrupt); the previous handlers come back afterwards.
    Off the main thread (where Python cannot set handlers) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()
    fired: list[int] = []

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:  # a forked child: die of the signal as it would by default
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if fired:  # already unwinding: let the clean-up finish
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(f"flexlab: {signal.Signals(signum).name} again; still "
                                 "cleaning up (SIGKILL stops at once and leaves leftovers "
                                 "for `flexlab clean`)\n")
            return
        fired.append(signum)
        if _depth[0]:  # inside deferred(): raised when the block ends
            _pending.append(signum)
            return
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _pending.clear()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within the block, a signal :func:`interruptible` would raise is held and raised as
    the block ends (even if the block raised: the interrupt wins). For short steps that
    must not be cut in half, such as starting a process and recording its PID, never for
    waits. Off the main thread (where handlers never run) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1
        if not _depth[0] and _pending:
            raise Interrupted(_pending.pop())


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM alone as Ctrl-C (SIGINT keeps Python's own handler): the older interface,
    kept for callers that only need SIGTERM."""
    with interruptible((signal.SIGTERM,)):
        yield
