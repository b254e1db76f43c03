"""Many emulated machines at once on one lab segment: one thread, one asyncio loop, one raw socket.

The fleet's thread joins the machines' namespace (``setns`` is per thread),
so every socket it opens — the segment's raw socket, the machines' UDP and
TCP sockets — lives there, while the harness stays in the host namespace.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.lab.lab import Lab
from harness.lab.netlink import enter_netns
from harness.machines.sim.errors import SimMachineError
from harness.machines.sim.machine import SETTLED, EmulatorSpec, SimMachine
from harness.machines.sim.netdev import SYSCTLS, MacvlanFactory, Peer
from harness.machines.sim.segment import SegmentPort


@dataclass
class FleetResult:
    """How a fleet run went: per-machine results, state counts, wall time, socket counters."""

    machines: list[dict[str, Any]]
    wall_seconds: float
    frames_sent: int = 0
    frames_received: int = 0
    frames_dropped: int = 0
    kernel_drops: int = 0
    states: dict[str, int] = field(default_factory=dict)

    def write(self, path: Path) -> Path:
        """Save the whole result as JSON (reports attach it; the timelines draw from it)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1))
        return path

    def by_mac(self, mac: str) -> dict[str, Any]:
        """The result of one machine."""
        for m in self.machines:
            if m["mac"] == mac.lower():
                return m
        raise KeyError(mac)


@dataclass(frozen=True)
class FleetPlace:
    """Where a fleet's machines live, resolved from the lab: the namespace, the link they
    sit on and the servers to pin as neighbours. Plain data, so a fleet in another process
    (procfleet.py) can be given it; the ``Lab`` itself does not cross processes."""

    ns: str
    lower: str
    peers: tuple[Peer, ...] = ()

    @classmethod
    def of(cls, lab: Lab, host: str, segment: str, pin_neighbours: bool) -> FleetPlace:
        """Resolve ``host``'s link on ``segment`` (and the peers, when pinned)."""
        peers = tuple(
            Peer(lab.ns(h), info.host_iface, str(info.address.ip), info.mac)
            for (h, seg), info in lab.links.items()
            if seg == segment and h != host and info.address is not None
        ) if pin_neighbours else ()
        return cls(lab.ns(host), lab.link(host, segment).host_iface, peers)


def prepare_namespace(lab: Lab, host: str) -> None:
    """The sysctls emulated machines need in their namespace (netdev.SYSCTLS)."""
    for key, value in SYSCTLS:
        lab.sysctl(host, key, value)


def power_on_delays(count: int, spread: float) -> list[float]:
    """Machine i of ``count`` powers on ``i * spread / count`` seconds after the start."""
    step = spread / max(1, count)
    return [i * step for i in range(count)]


class PowerButtons:
    """A fleet's power buttons, every one a :meth:`press` of ``off``, ``on`` or ``reset``."""

    def power_off(self, macs: Sequence[str], timeout: float = 30.0) -> None:
        """Cut these machines' power; returns when they are off (see SimMachine.power_off)."""
        self.press("off", macs, timeout)

    def power_on(self, macs: Sequence[str], timeout: float = 30.0) -> None:
        """Press these machines' power button: a fresh boot for those that are off."""
        self.press("on", macs, timeout)

    def reset(self, macs: Sequence[str], timeout: float = 30.0) -> None:
        """Power off, then on: the machines boot again from firmware."""
        self.press("reset", macs, timeout)

    def press(self, what: str, macs: Sequence[str], timeout: float = 30.0) -> None:
        """``what`` (off, on or reset) for these machines; returns when it is done."""
        raise NotImplementedError


class Fleet(PowerButtons):
    """Boots ``specs`` from lab host ``host`` (a namespace with an unaddressed link on ``segment``).

    ``scale`` multiplies every firmware timer (0.1: a 4 s DISCOVER timeout
    waits 0.4 s); ``spread`` staggers power-on over that many wall seconds;
    ``pin_neighbours`` replaces ARP with permanent neighbour entries on both
    sides (needed beyond a few hundred concurrent machines, see netdev.py).

    :meth:`run` boots everything and returns when every machine has settled.
    :meth:`start` / :meth:`wait` split that in two so another thread can
    :meth:`power_off`, :meth:`power_on` or :meth:`reset` machines meanwhile;
    with ``linger`` the fleet keeps its loop (and its machines' power buttons)
    until :meth:`stop`, even when every machine has settled.

    :meth:`at` makes a fleet from a resolved :class:`FleetPlace` instead of a lab (its
    namespace already prepared), with each machine's own power-on delay: a part of a
    bigger fleet keeps the whole fleet's schedule.
    """

    def __init__(self, lab: Lab | None, host: str, segment: str,
                 specs: Sequence[EmulatorSpec], *, scale: float = 0.1, spread: float = 0.0,
                 ifprefix: str = "m", pin_neighbours: bool = False, linger: bool = False
                 ) -> None:
        macs = [s.mac.lower() for s in specs]
        if len(set(macs)) != len(macs):
            raise SimMachineError("two machines share a MAC: give each machine its own")
        self.lab = lab
        self.host = host
        self.segment = segment
        self.specs = list(specs)
        self.scale = scale
        self.spread = spread
        self.place: FleetPlace | None = None
        self.delays = power_on_delays(len(self.specs), spread)
        self.ifprefix = ifprefix
        self.pin_neighbours = pin_neighbours
        self.linger = linger
        self.machines: list[SimMachine] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._requests = 0          # power requests scheduled on the loop, not yet done
        self._closed = False        # the loop is ending: no more power requests
        self._stopping = False
        self._ready = threading.Event()
        self._box: dict[str, Any] = {}
        self._worker: threading.Thread | None = None
        self._factory: MacvlanFactory | None = None
        self._timeout = 300.0

    # -- life ----------------------------------------------------------------------
    def run(self, timeout: float = 300.0) -> FleetResult:
        """Boot every machine, wait for all to finish (or ``timeout``), clean up, return results."""
        self.start(timeout)
        return self.wait()

    def start(self, timeout: float = 300.0) -> None:
        """Start the fleet's thread and power every machine on; returns once they are on."""
        if self._worker is not None:
            raise SimMachineError("this fleet was already started: make a new Fleet")
        self._timeout = timeout
        place = self.place
        if place is None:
            assert self.lab is not None  # __init__ or at() gave one or the other
            prepare_namespace(self.lab, self.host)
            place = self.place = FleetPlace.of(self.lab, self.host, self.segment,
                                               self.pin_neighbours)
        ns, lower = place.ns, place.lower
        factory = MacvlanFactory(ns, lower, place.peers)
        self._factory = factory
        box = self._box

        def thread_main() -> None:
            try:
                enter_netns(ns)
                box["result"] = asyncio.run(self._main(factory, lower, timeout))
            except BaseException as exc:  # handed to the caller's thread by wait()
                box["error"] = exc
            finally:
                self._ready.set()

        self._worker = threading.Thread(target=thread_main, name=f"fleet-{ns}", daemon=True)
        self._worker.start()
        if not self._ready.wait(60):
            raise SimMachineError(f"fleet in {ns} did not start within 60 s")
        if "error" in box:
            self.wait()  # raises the error, after cleaning up

    def wait(self, timeout: float | None = None) -> FleetResult:
        """Wait for the fleet to end (all settled, :meth:`stop`, or its timeout); results."""
        if self._worker is None:
            raise SimMachineError("the fleet was never started: call start() or run()")
        limit = (self._timeout + 60) if timeout is None else timeout
        try:
            self._worker.join(limit)
            if self._worker.is_alive():
                place = self.place  # set by start(), before the worker exists
                raise SimMachineError(f"fleet in {place.ns if place else '?'} did not "
                                      f"finish within {limit:.0f}s")
        finally:
            if self._factory is not None and not self._worker.is_alive():
                factory, self._factory = self._factory, None
                factory.close()
        if "error" in self._box:
            raise self._box["error"]
        result: FleetResult = self._box["result"]
        return result

    def stop(self) -> None:
        """End the fleet now (any thread): machines still booting are recorded as timed out."""
        with self._lock:
            self._stopping = True
            loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(wake.set)

    @property
    def running(self) -> bool:
        """True while power requests are taken (the loop runs and is not ending)."""
        with self._lock:
            return self._loop is not None and not self._closed

    def machine(self, mac: str) -> SimMachine:
        """The live machine with ``mac`` (after :meth:`start`)."""
        for m in self.machines:
            if m.ident.mac == mac.lower():
                return m
        raise KeyError(mac)

    # -- power buttons (thread-safe) -------------------------------------------------------
    def press(self, what: str, macs: Sequence[str], timeout: float = 30.0) -> None:
        """See :class:`PowerButtons`; from any thread but the fleet's own."""
        if threading.current_thread() is self._worker:
            raise SimMachineError("power requests come from outside the fleet's thread")
        with self._lock:
            if self._loop is None or self._closed:
                raise FleetClosed("the fleet is not running: power machines on in a new Fleet")
            machines = [self.machine(mac) for mac in macs]
            self._requests += 1
            try:
                future = asyncio.run_coroutine_threadsafe(self._power(what, machines),
                                                          self._loop)
            except RuntimeError as exc:  # the loop closed under us
                self._requests -= 1
                raise FleetClosed(f"the fleet ended: {exc}") from exc
        try:
            future.result(timeout)
        except concurrent.futures.CancelledError as exc:
            raise FleetClosed("the fleet ended before the power request ran") from exc
        except concurrent.futures.TimeoutError as exc:
            raise SimMachineError(f"power {what} of {', '.join(macs)} took over {timeout:.0f}s"
                                  ) from exc

    async def _power(self, what: str, machines: list[SimMachine]) -> None:
        try:
            if what in ("off", "reset"):
                await asyncio.gather(*(m.power_off() for m in machines))
            if what in ("on", "reset"):
                with self._lock:
                    closed = self._closed
                if closed:
                    raise FleetClosed("the fleet is ending: power machines on in a new Fleet")
                for m in machines:
                    self._tasks.add(m.power_on())
        finally:
            with self._lock:
                self._requests -= 1
            assert self._wake is not None
            self._wake.set()

    @classmethod
    def at(cls, place: FleetPlace, specs: Sequence[EmulatorSpec], delays: Sequence[float], *,
           scale: float = 0.1, ifprefix: str = "m", linger: bool = False) -> Fleet:
        """A fleet in an already prepared ``place``; machine i powers on ``delays[i]``
        seconds after the start (see the class docstring)."""
        if len(delays) != len(specs):
            raise SimMachineError(f"{len(specs)} machines but {len(delays)} power-on delays")
        fleet = cls(None, "", "", specs, scale=scale, ifprefix=ifprefix,
                    pin_neighbours=bool(place.peers), linger=linger)
        fleet.place = place
        fleet.delays = list(delays)
        return fleet

    # -- the loop ----------------------------------------------------------------------
    async def _main(self, factory: MacvlanFactory, lower: str, timeout: float) -> FleetResult:
        loop = asyncio.get_running_loop()
        port = SegmentPort(lower)
        port.attach(loop)
        # A wildcard socket on 68 swallows unicast DHCP replies the kernel would
        # otherwise answer with ICMP port-unreachable (the raw socket has its copy).
        drain = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        drain.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        drain.bind(("0.0.0.0", 68))
        drain.setblocking(False)
        loop.add_reader(drain.fileno(), lambda: _drain(drain))
        self.machines = [
            SimMachine(spec, port, factory, f"{self.ifprefix}{i}", scale=self.scale)
            for i, spec in enumerate(self.specs)
        ]
        started = time.monotonic()
        delays = self.delays

        async def launch(i: int, m: SimMachine) -> None:
            if delays[i]:
                await asyncio.sleep(delays[i])  # staggered power-on, part of the scenario
            if m.cuts == 0 and not m.powered:  # not cut or pressed while it waited its turn
                self._tasks.add(m.power_on())

        self._wake = asyncio.Event()
        self._tasks = {asyncio.create_task(launch(i, m)) for i, m in enumerate(self.machines)}
        with self._lock:
            self._loop = loop
        self._ready.set()
        try:
            await self._settle(loop.time() + timeout)
            with self._lock:
                self._closed = True
            pending = [t for t in self._tasks if not t.done()]
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for task in self._tasks:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]  # a bug, not a boot failure
            kernel_drops = port.kernel_drops()
        finally:
            with self._lock:
                self._closed = True
            loop.remove_reader(drain.fileno())
            drain.close()
            port.close()
        for m in self.machines:
            if m.state not in SETTLED and not m.state.startswith("timeout:"):
                m.timeline.add(m._now(), "error", "TIMEOUT", state=m.state)
                m.state = f"timeout:{m.state}"
        results = [m.result() for m in self.machines]
        return FleetResult(
            machines=results, wall_seconds=time.monotonic() - started,
            frames_sent=port.sent, frames_received=port.received, frames_dropped=port.dropped,
            kernel_drops=kernel_drops,
            states=dict(Counter(r["state"] for r in results)),
        )

    async def _settle(self, deadline: float) -> None:
        """Wait until every machine settled (or :meth:`stop`, or ``deadline``)."""
        loop = asyncio.get_running_loop()
        assert self._wake is not None
        while True:
            with self._lock:
                live = {t for t in self._tasks if not t.done()}
                if self._stopping or (not live and not self.linger and self._requests == 0):
                    self._closed = True
                    return
            left = deadline - loop.time()
            if left <= 0:
                return
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait([*live, waiter], timeout=left,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()


class FleetClosed(SimMachineError):
    """A power request reached a fleet that has ended: start a new Fleet for those machines."""


def _drain(sock: socket.socket) -> None:
    with contextlib.suppress(BlockingIOError, InterruptedError):
        while True:
            sock.recv(4096)
