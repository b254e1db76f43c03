"""Counters the TFTP server keeps for the Boot Proxy's /metrics endpoint."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bootproxy.counterset import snapshot_fields


@dataclass
class TftpCounters:
    """Monotonic counters; read them with :meth:`snapshot` from any coroutine.

    ``errors`` is keyed by kind: ``file_not_found``, ``access_violation``,
    ``illegal_operation``, ``unknown_tid``, ``timeout``, ``client_error``,
    ``busy``, ``refused_client``, ``malformed``, ``duplicate_request``, ``client_gone``
    (the client's port closed mid-transfer: ICMP port unreachable).
    """

    bytes_sent: int = 0
    transfers_started: int = 0
    transfers_completed: int = 0
    transfers_failed: int = 0
    option_probes: int = 0  # OACK answered with ERROR 8 (EDK2 tsize probe): not a failure
    active: int = 0
    # a lone transfer's thread polls for its next ACK before sleeping (threads.py):
    # ACKs caught so, and polls that caught nothing (each costs up to ack_poll_us of CPU)
    acks_polled: int = 0
    ack_polls_missed: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, object]:
        """A plain-dict copy, safe to serialise or render as Prometheus text."""
        return snapshot_fields(self)
