"""Netlink handles inside a network namespace, opened without forking the harness.

pyroute2's ``NetNS`` and ``netns.create`` fork the calling process to reach the
namespace. From a pytest worker or a scenario runner holding a few hundred MB, that
fork costs tens of milliseconds of CPU per handle (page tables copied, then torn
down), and a lab opens a dozen handles while it is built: a real share of the test
suite's CPU. Here a short-lived thread enters the namespace (``setns`` is per thread),
opens the netlink socket there and hands its descriptor back; a socket stays in the
namespace it was made in, whoever uses it after. Namespaces are made with iproute2's
``ip netns add``, which ``subprocess`` starts without copying this process.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pyroute2 import IPRoute

__all__ = ["NETNS_DIR", "create_netns", "enter_netns", "netlink_socket_in", "ns_route"]

NETNS_DIR = "/var/run/netns"
"""Where ``ip netns`` (and pyroute2) keep a named namespace's handle."""

_CLONE_NEWNET = 0x40000000
_NETLINK_ROUTE = 0
_libc = ctypes.CDLL(None, use_errno=True)


def _path(ns: str) -> str:
    """A namespace name (``ip netns``) or already a path (``/proc/PID/ns/net``)."""
    return ns if ns.startswith("/") else os.path.join(NETNS_DIR, ns)


def enter_netns(ns: str) -> None:
    """Move the calling thread into network namespace ``ns`` (a name or a path); OSError
    when it is not there or cannot be entered.  Never creates one: pyroute2's ``setns``
    makes a missing namespace (with a fork), so a typo became a new, empty namespace."""
    fd = os.open(_path(ns), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"cannot enter network namespace {ns}: {os.strerror(err)}")
    finally:
        os.close(fd)


def netlink_socket_in(ns: str) -> int:
    """A new NETLINK_ROUTE socket living in namespace ``ns``; returns its descriptor (the
    caller owns it). Raises OSError when the namespace cannot be entered."""
    made: list[int] = []
    failed: list[BaseException] = []

    def enter_and_open() -> None:
        try:
            enter_netns(ns)
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_ROUTE)
            made.append(sock.detach())
        except BaseException as exc:  # handed to the caller's thread below
            failed.append(exc)

    # the thread ends in the namespace and takes that with it: no other thread moves
    worker = threading.Thread(target=enter_and_open, name=f"netlink-{ns}", daemon=True)
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return made[0]


@contextmanager
def ns_route(ns: str) -> Iterator[IPRoute]:
    """An ``IPRoute`` acting in namespace ``ns`` (a name or a path), closed on exit:
    what ``pyroute2.NetNS(ns)`` gives, without its fork."""
    ipr = IPRoute(fileno=netlink_socket_in(ns))
    try:
        yield ipr
    finally:
        ipr.close()


def create_netns(name: str) -> None:
    """Make the named network namespace; OSError with iproute2's reason when it cannot."""
    proc = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise OSError(f"ip netns add {name} failed (exit {proc.returncode}): "
                      f"{proc.stderr.strip()}")
