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


def udp_bound(pid: int, port: int) -> bool:
    """True if process ``pid`` holds a UDP (v4 or v6) socket bound to local ``port``.

    /proc/<pid>/net/udp lists the sockets of the process's own network
    namespace; matching inodes against its fds proves this process owns one.
    """
    mine = _socket_inodes(pid)
    for table in ("udp", "udp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[9] in mine:
                return True
    return False


def tcp_listening(pid: int, port: int) -> bool:
    """True if process ``pid`` has a TCP socket listening on local ``port``."""
    mine = _socket_inodes(pid)
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] in mine:
                return True
    return False
