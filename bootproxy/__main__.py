"""`python -m bootproxy` / `flexlab-bootproxy` / `flexlab bootproxy`: run the whole Boot Proxy
until SIGTERM or SIGINT.

Prints exactly one JSON line `{"event": "ready", ...}` on stdout once every
listener is bound; everything else (JSON logs) goes to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence

from bootproxy.app import BootProxy
from bootproxy.config import BootProxyConfig, load_config
from bootproxy.errors import BootProxyError
from bootproxy.logs import setup_logging

__all__ = ["main", "run"]


async def run(config: BootProxyConfig, stop: asyncio.Event | None = None) -> None:
    """Start the proxy, print the ready line, and serve until `stop` is set or a signal comes."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Not possible outside the main thread (tests run the proxy in a thread).
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    proxy = BootProxy(config)
    try:
        ready = await proxy.start()
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await proxy.stop()


def _raise_fd_limit(want: int = 65536) -> None:
    """Each TFTP transfer and HTTP client holds descriptors: lift the soft limit to the hard."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def invoked_as(argv0: str | None = None) -> str:
    """How the user started the proxy, for usage lines: ``python -m bootproxy`` or the
    console script's name (``flexlab bootproxy`` passes its own)."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    if argv0.endswith("__main__.py") or argv0 in ("-m", "-c", ""):
        return "python -m bootproxy"
    return os.path.basename(argv0) or "flexlab-bootproxy"


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Entry point: parse flags/env/YAML, run, and turn proxy errors into a one-line message."""
    _raise_fd_limit()
    prog = prog or invoked_as()
    try:
        config = load_config(argv, prog=prog)
        setup_logging(config.name, config.log_level)
        asyncio.run(run(config))
    except BootProxyError as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
