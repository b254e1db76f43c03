"""A machine's own network device once it has a lease: a macvlan with its MAC and address.

After DHCP a machine needs a real TCP stack (HTTP) and UDP (4011, TFTP).
A macvlan per machine, created on the segment interface of the machines'
namespace at lease time, gives the kernel's stack the machine's own MAC
(so servers' ARP and neighbour tables, and MAC-keyed checks, see the right
MAC) and its leased address. Sockets bind to that address and to the device
(SO_BINDTODEVICE), since 1,000 devices share one subnet. The namespace
answers ARP only on the device that owns the address (arp_ignore=1).
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

from pyroute2 import IPRoute
from pyroute2 import netns as pr_netns

from harness.machines.sim.errors import SimMachineError

SYSCTLS = (
    ("net.ipv4.conf.all.arp_ignore", "1"),
    ("net.ipv4.conf.all.arp_announce", "2"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    ("net.ipv6.conf.default.disable_ipv6", "1"),
)


class MacvlanFactory:
    """Creates and removes per-machine macvlans in namespace ``ns`` on ``lower``.

    Netlink calls run on one worker thread that joined the namespace, so the
    asyncio loop never blocks on them.
    """

    def __init__(self, ns: str, lower: str) -> None:
        self.ns = ns
        self.lower = lower
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"macvlan-{ns}",
                                        initializer=pr_netns.setns, initargs=(ns,))
        self._ipr: IPRoute | None = None
        self._lower_index = 0
        self.created: list[str] = []

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The namespace worker (pass to ``loop.run_in_executor``)."""
        return self._pool

    def _ipr_ready(self) -> IPRoute:
        if self._ipr is None:
            self._ipr = IPRoute()
            found = self._ipr.link_lookup(ifname=self.lower)
            if not found:
                raise SimMachineError(f"no interface {self.lower!r} in namespace {self.ns}")
            self._lower_index = found[0]
            self._ipr.link("set", index=self._lower_index, state="up")
        return self._ipr

    def create(self, ifname: str, mac: str, address: str, prefixlen: int) -> None:
        """Create macvlan ``ifname`` with ``mac`` and ``address`` (call on the worker)."""
        ipr = self._ipr_ready()
        ipr.link("add", ifname=ifname, kind="macvlan", link=self._lower_index,
                 macvlan_mode="bridge", address=mac)
        self.created.append(ifname)
        idx = ipr.link_lookup(ifname=ifname)[0]
        ipr.addr("add", index=idx, address=address, prefixlen=prefixlen)
        ipr.link("set", index=idx, state="up")

    def remove(self, ifname: str) -> None:
        """Delete one macvlan (call on the worker)."""
        ipr = self._ipr_ready()
        found = ipr.link_lookup(ifname=ifname)
        if found:
            ipr.link("del", index=found[0])
        if ifname in self.created:
            self.created.remove(ifname)

    def remove_all(self) -> None:
        """Delete every macvlan this factory made; run from any thread."""
        def work() -> None:
            for name in list(self.created):
                self.remove(name)
        self._pool.submit(work).result()

    def close(self) -> None:
        """Remove what was made and stop the worker."""
        try:
            self.remove_all()
        finally:
            if self._ipr is not None:
                ipr, self._ipr = self._ipr, None
                self._pool.submit(ipr.close).result()
            self._pool.shutdown(wait=True)


def bound_socket(kind: int, ifname: str, address: str, port: int = 0) -> socket.socket:
    """A non-blocking UDP or TCP socket bound to ``address``:``port`` on device ``ifname``."""
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        sock.bind((address, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
