"""Many emulated machines at once on one lab segment: one thread, one asyncio loop, one raw socket.

The fleet's thread joins the machines' namespace (``setns`` is per thread),
so every socket it opens — the segment's raw socket, the machines' UDP and
TCP sockets — lives there, while the harness stays in the host namespace.
"""

from __future__ import annotations

import asyncio
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

from pyroute2 import netns as pr_netns

from harness.lab.lab import Lab
from harness.machines.sim.errors import SimMachineError
from harness.machines.sim.machine import MachineSpec, SimMachine
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


class Fleet:
    """Boots ``specs`` from lab host ``host`` (a namespace with an unaddressed link on ``segment``).

    ``scale`` multiplies every firmware timer (0.1: a 4 s DISCOVER timeout
    waits 0.4 s); ``spread`` staggers power-on over that many wall seconds;
    ``pin_neighbours`` replaces ARP with permanent neighbour entries on both
    sides (needed beyond a few hundred concurrent machines, see netdev.py).
    """

    def __init__(self, lab: Lab, host: str, segment: str, specs: Sequence[MachineSpec], *,
                 scale: float = 0.1, spread: float = 0.0, ifprefix: str = "m",
                 pin_neighbours: bool = False) -> None:
        macs = [s.mac.lower() for s in specs]
        if len(set(macs)) != len(macs):
            raise SimMachineError("two machines share a MAC: give each machine its own")
        self.lab = lab
        self.host = host
        self.segment = segment
        self.specs = list(specs)
        self.scale = scale
        self.spread = spread
        self.ifprefix = ifprefix
        self.pin_neighbours = pin_neighbours
        self.machines: list[SimMachine] = []

    def run(self, timeout: float = 300.0) -> FleetResult:
        """Boot every machine, wait for all to finish (or ``timeout``), clean up, return results."""
        for key, value in SYSCTLS:
            self.lab.sysctl(self.host, key, value)
        ns = self.lab.ns(self.host)
        lower = self.lab.link(self.host, self.segment).host_iface
        factory = MacvlanFactory(ns, lower, self._peers() if self.pin_neighbours else ())
        box: dict[str, Any] = {}

        def thread_main() -> None:
            try:
                pr_netns.setns(ns)
                box["result"] = asyncio.run(self._main(factory, lower, timeout))
            except BaseException as exc:  # handed to the caller's thread below
                box["error"] = exc

        worker = threading.Thread(target=thread_main, name=f"fleet-{ns}", daemon=True)
        try:
            worker.start()
            worker.join(timeout + 60)
            if worker.is_alive():
                raise SimMachineError(f"fleet in {ns} did not finish within {timeout + 60:.0f}s")
        finally:
            factory.close()
        if "error" in box:
            raise box["error"]
        result: FleetResult = box["result"]
        return result

    def _peers(self) -> tuple[Peer, ...]:
        return tuple(
            Peer(self.lab.ns(host), info.host_iface, str(info.address.ip), info.mac)
            for (host, seg), info in self.lab.links.items()
            if seg == self.segment and host != self.host and info.address is not None
        )

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
        step = self.spread / max(1, len(self.machines))

        async def launch(i: int, m: SimMachine) -> None:
            if step:
                await asyncio.sleep(i * step)  # staggered power-on, part of the scenario
            await m.run()

        tasks = [asyncio.create_task(launch(i, m)) for i, m in enumerate(self.machines)]
        try:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            kernel_drops = port.kernel_drops()
        finally:
            loop.remove_reader(drain.fileno())
            drain.close()
            port.close()
        for m in self.machines:
            if m.state not in ("done", "failed"):
                m.timeline.add(m._now(), "error", "TIMEOUT", state=m.state)
                m.state = f"timeout:{m.state}"
        results = [m.result() for m in self.machines]
        return FleetResult(
            machines=results, wall_seconds=time.monotonic() - started,
            frames_sent=port.sent, frames_received=port.received, frames_dropped=port.dropped,
            kernel_drops=kernel_drops,
            states=dict(Counter(r["state"] for r in results)),
        )


def _drain(sock: socket.socket) -> None:
    with contextlib.suppress(BlockingIOError, InterruptedError):
        while True:
            sock.recv(4096)
