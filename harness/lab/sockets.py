"""Readiness probes that look at a process's real sockets through /proc."""

from __future__ import annotations

import os
from pathlib import Path


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fd_dir.iterdir())
    except OSError:
        return inodes
    for fd in entries:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _owned_sockets(pid: int, protocol: str) -> list[list[str]]:
    """Rows of /proc/<pid>/net/<protocol>{,6} whose socket belongs to ``pid``.

    /proc/<pid>/net lists the sockets of the process's own network namespace;
    matching inodes against its fds proves this process owns the socket.
    """
    mine = _socket_inodes(pid)
    rows = []
    for table in (protocol, f"{protocol}6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        rows += [fields for fields in map(str.split, lines) if fields[9] in mine]
    return rows


def _local_port(fields: list[str]) -> int:
    return int(fields[1].rsplit(":", 1)[1], 16)


def udp_bound(pid: int, port: int) -> bool:
    """True if process ``pid`` holds a UDP (v4 or v6) socket bound to local ``port``."""
    return any(_local_port(f) == port for f in _owned_sockets(pid, "udp"))


def tcp_listening(pid: int, port: int) -> bool:
    """True if process ``pid`` has a TCP socket listening (state 0A) on local ``port``."""
    return any(_local_port(f) == port and f[3] == "0A" for f in _owned_sockets(pid, "tcp"))
