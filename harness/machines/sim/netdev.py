"""A machine's own network device once it has a lease: a macvlan with its MAC and address.

After DHCP a machine needs a real TCP stack (HTTP) and UDP (4011, TFTP).
A macvlan per machine, created on the segment interface of the machines'
namespace at lease time, gives the kernel's stack the machine's own MAC
(so servers' ARP and neighbour tables, and MAC-keyed checks, see the right
MAC) and its leased address. Sockets bind to that address and to the device
(SO_BINDTODEVICE), since 1,000 devices share one subnet. The namespace
answers ARP only on the device that owns the address (arp_ignore=1).

The kernel's neighbour table is one budget for the whole host (gc_thresh3,
1024 entries by default, counted across every namespace), and 1,000
machines talking to three servers need ~6,000 entries. ``pinned`` peers get
permanent entries on both sides instead (permanent entries are exempt from
that budget); ARP is then not exercised, so scale runs use it and
conformance runs do not.
"""

from __future__ import annotations

import contextlib
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pyroute2 import IPRoute

from harness.lab.netlink import enter_netns, netlink_socket_in
from harness.machines.sim.errors import SimMachineError

SYSCTLS = (
    ("net.ipv4.conf.all.arp_ignore", "1"),
    ("net.ipv4.conf.all.arp_announce", "2"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    ("net.ipv6.conf.default.disable_ipv6", "1"),
)


NUD_PERMANENT = 0x80


@dataclass(frozen=True)
class Peer:
    """A statically addressed lab host on the machines' segment (a server they talk to)."""

    ns: str
    ifname: str
    address: str
    mac: str


class MacvlanFactory:
    """Creates and removes per-machine macvlans in namespace ``ns`` on ``lower``.

    Netlink calls run on one worker thread that joined the namespace, so the
    asyncio loop never blocks on them.
    """

    def __init__(self, ns: str, lower: str, pinned: tuple[Peer, ...] = ()) -> None:
        self.ns = ns
        self.lower = lower
        self.pinned = pinned
        self._peer_ipr: dict[str, tuple[IPRoute, int]] = {}
        self._addresses: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"macvlan-{ns}",
                                        initializer=enter_netns, initargs=(ns,))
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
            for peer in self.pinned:  # a netlink socket belongs to the netns it was made in
                pipr = IPRoute(fileno=netlink_socket_in(peer.ns))
                self._peer_ipr[peer.ns] = (pipr, pipr.link_lookup(ifname=peer.ifname)[0])
        return self._ipr

    def create(self, ifname: str, mac: str, address: str, prefixlen: int,
               gateway: str | None = None) -> None:
        """Create macvlan ``ifname`` with ``mac`` and ``address`` (call on the worker).

        With ``gateway`` (DHCP option 3) the device gets its own default route: servers
        behind a relay are reached through it (RELAY-2). Sockets are bound to the device,
        so each machine's lookup finds its own route; the metric keeps routes distinct.
        """
        ipr = self._ipr_ready()
        ipr.link("add", ifname=ifname, kind="macvlan", link=self._lower_index,
                 macvlan_mode="bridge", address=mac)
        self.created.append(ifname)
        idx = ipr.link_lookup(ifname=ifname)[0]
        ipr.addr("add", index=idx, address=address, prefixlen=prefixlen)
        ipr.link("set", index=idx, state="up")
        if gateway is not None:
            ipr.route("add", dst="0.0.0.0/0", gateway=gateway, oif=idx, priority=idx)
        for peer in self.pinned:
            ipr.neigh("replace", dst=peer.address, lladdr=peer.mac, ifindex=idx,
                      state=NUD_PERMANENT)
            pipr, pidx = self._peer_ipr[peer.ns]
            pipr.neigh("replace", dst=address, lladdr=mac, ifindex=pidx, state=NUD_PERMANENT)
        self._addresses[ifname] = address

    def remove(self, ifname: str) -> None:
        """Delete one macvlan (call on the worker)."""
        ipr = self._ipr_ready()
        found = ipr.link_lookup(ifname=ifname)
        if found:
            ipr.link("del", index=found[0])
        address = self._addresses.pop(ifname, None)
        for pipr, pidx in self._peer_ipr.values():
            if address is not None:
                with contextlib.suppress(Exception):  # already gone is fine
                    pipr.neigh("del", dst=address, ifindex=pidx)
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
            for pipr, _ in self._peer_ipr.values():
                self._pool.submit(pipr.close).result()
            self._peer_ipr.clear()
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
