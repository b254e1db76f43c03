"""Calling into a lab namespace from the harness without joining the host to the lab.

The harness process stays in the host's namespace; a worker thread enters
the lab namespace (``setns`` is per thread) and every socket it opens lives
there. API clients (the Control Plane's, a Boot Proxy's /metrics) run their
calls through such a worker, so no veth or route ever connects the host to
lab traffic.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from harness.lab.netlink import enter_netns

P = ParamSpec("P")
T = TypeVar("T")


class NamespaceWorker:
    """A single thread living in network namespace ``ns``; :meth:`call` runs functions there.

    The thread enters the namespace as its first job, so a namespace that is not there
    is an OSError from the constructor (no thread left behind), not a new namespace nor
    a broken pool on the first call.
    """

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ns-{ns}")
        try:  # one thread, so every later job runs where this one moved it
            self._pool.submit(enter_netns, ns).result()
        except BaseException:
            self._pool.shutdown(wait=True)
            raise

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` inside the namespace and return its result."""
        return self._pool.submit(fn, *args, **kwargs).result()

    def close(self) -> None:
        """Stop the worker thread."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> NamespaceWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
