"""The emulated machine's power states: on, cut mid-boot, on again (reset), without a lab.

A fake segment port records the raw frames a machine puts on the wire, so
"off sends nothing" is checked on what the machine actually hands to its NIC.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from harness.machines.sim.frames import UdpFrame, parse_udp_frame
from harness.machines.sim.machine import EmulatorSpec, SimMachine, _abort
from harness.machines.sim.profiles import profile

pytestmark = pytest.mark.unit

MAC = "52:54:00:0f:f0:01"
SCALE = 0.01  # pxe-bios waits 4, 8, 16, 32 s after each DISCOVER: 40, 80, 160, 320 ms here


class FakePort:
    """Stands in for the shared raw socket: records sends, keeps the handler table."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, bytes]] = []
        self.handlers: dict[str, Callable[[UdpFrame], None]] = {}

    def register(self, mac: str, handler: Callable[[UdpFrame], None]) -> None:
        self.handlers[mac] = handler

    def unregister(self, mac: str) -> None:
        self.handlers.pop(mac, None)

    def send(self, frame: bytes) -> None:
        self.frames.append((time.monotonic(), frame))

    def xids(self) -> list[int]:
        return [int.from_bytes(parse_udp_frame(f).payload[4:8], "big") for _, f in self.frames]


def _machine(port: FakePort, attempts: int = 1) -> SimMachine:
    spec = EmulatorSpec(MAC, profile("pxe-bios"), boot_attempts=attempts)
    netdevs: Any = None  # never reached: the fake port answers nothing, so no lease
    return SimMachine(spec, port, netdevs, "m0", scale=SCALE)  # type: ignore[arg-type]


async def _until(probe: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def test_a_machine_never_powered_is_off_but_not_finished() -> None:
    m = _machine(FakePort())
    assert m.state == "off"
    assert not m.finished  # waiting for its turn (a staggered power-on): not done yet
    asyncio.run(m.power_off())  # cutting an unpowered machine changes nothing
    assert m.cuts == 0 and not m.finished


def test_power_off_mid_discovery_silences_the_machine() -> None:
    async def scenario() -> tuple[SimMachine, FakePort, int]:
        port = FakePort()
        m = _machine(port)
        task = m.power_on()
        assert not m.finished
        await _until(lambda: len(port.frames) >= 2, "a DISCOVER retransmission")
        await m.power_off()
        assert task.cancelled()
        sent = len(port.frames)
        # two more retransmission periods (80 + 160 ms): an unpowered machine would send again
        await asyncio.sleep(0.3)
        return m, port, sent

    m, port, sent = asyncio.run(scenario())
    assert len(port.frames) == sent
    assert m.state == "off" and m.finished and not m.powered
    assert MAC not in port.handlers
    power = m.timeline.of_kind("power")
    assert [e.summary for e in power] == ["power off"]
    assert power[0].detail["state"] == "dhcp-discover"
    assert (power[0].detail["began"] <= power[0].detail["cut_at"] <= power[0].detail["unix"]
            <= time.time())
    assert m.timeline.states()[-1] == "off"


def test_reset_boots_again_from_firmware_with_a_fresh_xid() -> None:
    async def scenario() -> tuple[SimMachine, FakePort, int]:
        port = FakePort()
        m = _machine(port)
        m.power_on()
        await _until(lambda: len(port.frames) >= 1, "the first DISCOVER")
        await m.power_off()
        first_boot = len(port.frames)
        m.power_on()
        assert m.powered and not m.finished
        await _until(lambda: len(port.frames) > first_boot, "the second boot's DISCOVER")
        await m.power_off()
        return m, port, first_boot

    m, port, first_boot = asyncio.run(scenario())
    xids = port.xids()
    assert len(set(xids[:first_boot])) == 1  # retransmissions of one discovery keep the xid
    assert xids[first_boot] != xids[0]
    assert m.boots == 2 and m.cuts == 2
    states = m.timeline.states()
    assert states[:3] == ["power-on", "dhcp-discover", "off"]
    assert states[3:5] == ["power-on", "dhcp-discover"]
    boots = [e.detail["boot"] for e in m.timeline.events if e.summary == "power-on"]
    assert boots == [1, 2]
    # the timeline keeps one clock across the reset
    times = [e.t for e in m.timeline.events]
    assert times == sorted(times)
    sent = [e.detail["xid"] for e in m.timeline.of_kind("sent")]
    assert sent == xids


def test_pressing_power_on_a_running_machine_does_nothing() -> None:
    async def scenario() -> tuple[SimMachine, bool]:
        m = _machine(FakePort())
        task = m.power_on()
        same = m.power_on() is task
        await m.power_off()
        return m, same

    m, same = asyncio.run(scenario())
    assert same and m.boots == 1


def test_a_machine_that_gave_up_is_finished_and_can_still_be_cut() -> None:
    async def scenario() -> SimMachine:
        m = _machine(FakePort())
        task = m.power_on()
        await asyncio.wait_for(task, 5)  # 4+8+16+32 firmware s at 0.01: PXE-E51
        assert m.state == "failed" and m.finished and m.powered
        await m.power_off()
        return m

    m = asyncio.run(scenario())
    assert m.state == "off" and m.finished
    assert m.error is not None and m.error.code == "PXE-E51"


class SlowNetdevs:
    """A device worker whose removal takes a while (netlink on a loaded host), timed."""

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1)
        self.removed_at: list[float] = []

    def remove(self, ifname: str) -> None:
        time.sleep(0.05)
        self.removed_at.append(time.time())


def test_the_cut_is_dated_once_the_device_is_gone() -> None:
    """Until its device is gone the kernel still speaks for a machine (it acknowledges
    TCP data arriving), so ``cut_at`` (after which a capture must show nothing) may
    not come before the removal (a CI run caught a TCP frame 'after power off' when it did)."""
    netdevs = SlowNetdevs()

    async def scenario() -> SimMachine:
        spec = EmulatorSpec(MAC, profile("pxe-bios"))
        m = SimMachine(spec, FakePort(), netdevs, "m0", scale=SCALE)  # type: ignore[arg-type]
        m.power_on()
        await asyncio.sleep(0.01)
        # as _bring_up leaves a leased machine: its device is up on the worker
        m._netdev_up = m._leased = True
        await m.power_off()
        return m

    try:
        m = asyncio.run(scenario())
    finally:
        netdevs.executor.shutdown()
    power = m.timeline.of_kind("power")[-1].detail
    assert len(netdevs.removed_at) == 1
    assert power["began"] < netdevs.removed_at[0] <= power["cut_at"] <= power["unix"]


def test_a_held_socket_sends_no_fin_until_it_is_aborted() -> None:
    """The mechanism power_off relies on: the boot task's close() of a socket whose
    descriptor was duplicated sends nothing; the abort afterwards resets, never FINs."""
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    try:
        peer.settimeout(0.2)
        held = os.dup(client.fileno())
        client.close()  # what the cancelled boot task does
        with pytest.raises(TimeoutError):
            peer.recv(1)  # no FIN arrived: the connection is still open
        _abort(held)
        peer.settimeout(2)
        with pytest.raises(ConnectionResetError):
            peer.recv(1)  # an abortive close (RST on loopback, where a route exists)
    finally:
        peer.close()
        server.close()
