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
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM alone as Ctrl-C (SIGINT keeps Python's own handler): the older interface,
    kept for callers that only need SIGTERM."""
    with interruptible((signal.SIGTERM,)):
        yield
