"""``python3 -m bootproxy.httpboot --root DIR``: the HTTP boot server alone.

For debugging and benchmarks.  Without ``--cp-url`` it serves boot-root files
only (every script is 404); with ``--cp-url``/``--cp-token`` (env
FLEXLAB_BP_CP_TOKEN) it renders scripts and caches artifacts from the Control
Plane.  Prints one JSON ready line, serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bootproxy.httpboot.server import HttpBootConfig, HttpBootServer
from bootproxy.httpboot.source import BootSource, ControlPlaneSource, NoControlPlane

__all__ = ["NoControlPlane", "main", "serve"]  # NoControlPlane re-exported for old imports


async def serve(config: HttpBootConfig, source: BootSource) -> None:
    """Run an HttpBootServer until a signal arrives, printing the ready line."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with HttpBootServer(config, source) as server:
        host, port = server.address
        print(json.dumps({"event": "ready", "host": host, "port": port}), flush=True)
        await stop.wait()
        print(json.dumps({"event": "stopped", **server.counters.snapshot()}), flush=True)
    if isinstance(source, ControlPlaneSource):
        await source.aclose()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags and serve; exits with a message if the port cannot be bound."""
    parser = argparse.ArgumentParser(prog="python3 -m bootproxy.httpboot", description=__doc__)
    parser.add_argument("--root", type=Path, required=True, help="boot root to serve")
    parser.add_argument("--cache-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "flexlab-httpboot-cache")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--public-url", default="")
    parser.add_argument("--cp-url", default="")
    parser.add_argument("--cp-token", default=os.environ.get("FLEXLAB_BP_CP_TOKEN", ""))
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    config = HttpBootConfig(root=args.root, cache_dir=args.cache_dir, host=args.host,
                            port=args.port, public_url=args.public_url)

    async def run() -> None:
        source: BootSource = (ControlPlaneSource(args.cp_url, args.cp_token)
                              if args.cp_url else NoControlPlane())
        await serve(config, source)

    try:
        asyncio.run(run())
    except OSError as exc:
        raise SystemExit(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc


if __name__ == "__main__":
    main()
