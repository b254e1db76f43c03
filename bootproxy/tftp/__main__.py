"""``python3 -m bootproxy.tftp --root DIR``: the TFTP server alone, for debugging and benchmarks.

Prints one JSON line ``{"event": "ready", "host": ..., "port": ...}`` once bound,
then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bootproxy.tftp.options import Limits
from bootproxy.tftp.server import TftpConfig, TftpServer


async def serve(config: TftpConfig) -> None:
    """Run a TftpServer until a signal arrives, printing the ready line."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with TftpServer(config) as server:
        host, port = server.address
        print(json.dumps({"event": "ready", "host": host, "port": port}), flush=True)
        await stop.wait()
    # after stop(): a transfer whose last ACK was already in is counted by then
    print(json.dumps({"event": "stopped", **server.counters.snapshot()}), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags and serve; exits 2 with a message if the port cannot be bound."""
    parser = argparse.ArgumentParser(prog="python3 -m bootproxy.tftp", description=__doc__)
    parser.add_argument("--root", type=Path, required=True, help="boot root to serve")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=69, help="0 picks a free port")
    parser.add_argument("--max-blksize", type=int, default=1468)
    parser.add_argument("--max-windowsize", type=int, default=64)
    parser.add_argument("--dedicated-threads", type=int, default=TftpConfig.dedicated_threads,
                        help="running transfers that get a thread each; the rest share "
                             "one epoll thread (0: all do)")
    parser.add_argument("--ack-poll-us", type=int, default=TftpConfig.ack_poll_us,
                        help="a transfer alone polls this many microseconds for its next "
                             "ACK before sleeping (0: never)")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    try:
        config = TftpConfig(root=args.root, host=args.host, port=args.port,
                            limits=Limits(max_blksize=args.max_blksize,
                                          max_windowsize=args.max_windowsize),
                            dedicated_threads=args.dedicated_threads,
                            ack_poll_us=args.ack_poll_us)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        raise SystemExit(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc


if __name__ == "__main__":
    main()
