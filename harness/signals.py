"""SIGTERM as Ctrl-C for the commands that start helper processes (site-check --serve,
certify): a service manager's or a CI job's SIGTERM must unwind through the ``finally``
blocks that stop the Boot Proxy, the Control Plane and tcpdump.

Two traps this module avoids, both seen in CI:

- the handler must not outlive the command: a test that calls ``main()`` in-process would
  otherwise leave pytest itself turning SIGTERM into KeyboardInterrupt;
- a process forked from the one that installed it (pyroute2 forks helpers and stops
  them with SIGTERM) must die of SIGTERM as usual, not raise KeyboardInterrupt inside a
  copy of its parent — in a copy of pytest that ran the session's teardown, removing
  the parent's labs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM to this process raises KeyboardInterrupt; the previous
    handler comes back afterwards. Off the main thread (where Python cannot set
    handlers) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:  # a forked child: die of SIGTERM as it would by default
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
