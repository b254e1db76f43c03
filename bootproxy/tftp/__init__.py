"""Read-only TFTP server for the Boot Proxy (RFC 1350, 2347, 2348, 2349, 7440).

Written here rather than taken from tftpy because the Boot Proxy needs
windowsize (RFC 7440), a per-client allow hook for MAC filtering, counters for
/metrics, a concurrency cap and a pure, separately testable state machine;
tftpy has none of windowsize, hooks or counters and mixes protocol with socket code.

How a transfer runs: ``server.py`` answers RRQs on the event loop and gives each
transfer a new port as two sockets, one connected to the client (``recv``/``send``
per block, no addresses) and one unconnected beside it that catches anyone else
(ERROR 5, TFTP-1).  While fewer than ``TftpConfig.dedicated_threads`` (1) run on
threads, a new transfer gets a thread that sleeps in ``recv`` (``threads.py``: a
machine booting alone, lockstep close to tftpd-hpa's pace); the rest share one
epoll thread (``pump.py``), which many transfers at once need.  Both feed
``transfer.py``'s state machine through ``mover.py``.

Wiring (from the app)::

    server = TftpServer(TftpConfig(root=Path("/srv/boot"), port=69), allow=is_served_ip)
    await server.start()
    ...
    server.counters.snapshot()   # for /metrics
    await server.stop()
"""

from bootproxy.tftp.client import FetchResult, fetch
from bootproxy.tftp.counters import TftpCounters
from bootproxy.tftp.errors import PacketError, PathError, TftpError, TransferError
from bootproxy.tftp.options import Limits, Negotiated, negotiate
from bootproxy.tftp.packets import parse_packet
from bootproxy.tftp.paths import resolve_in_root
from bootproxy.tftp.server import AllowFn, TftpConfig, TftpServer
from bootproxy.tftp.transfer import Outcome, ReadTransfer, State

__all__ = [
    "AllowFn",
    "FetchResult",
    "Limits",
    "Negotiated",
    "Outcome",
    "PacketError",
    "PathError",
    "ReadTransfer",
    "State",
    "TftpConfig",
    "TftpCounters",
    "TftpError",
    "TftpServer",
    "TransferError",
    "fetch",
    "negotiate",
    "parse_packet",
    "resolve_in_root",
]
