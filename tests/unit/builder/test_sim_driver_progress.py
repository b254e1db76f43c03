"""SimDriver.progress follows a live machine's growing timeline without converting it
all again on every poll (a 1,000-machine storm polled that every 0.2 s)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest

from harness.builder import sim_driver
from harness.builder.sim_driver import SimDriver, _Run
from harness.machines.sim.timeline import Timeline

pytestmark = pytest.mark.unit


def _driver(machine: Any, steps: tuple[float, ...] = ()) -> SimDriver:
    scenario = SimpleNamespace(time_scale=0.1, timeout=9,
                               steps=[SimpleNamespace(at=at) for at in steps])
    driver = SimDriver(cast(Any, None), cast(Any, scenario))
    driver.plans["a"] = cast(Any, None)
    fleet = SimpleNamespace(machines=[machine])
    driver._where["a"] = (_Run(cast(Any, fleet), threading.Thread(target=lambda: None)), 0)
    return driver


def test_each_poll_converts_only_the_new_events(monkeypatch: pytest.MonkeyPatch) -> None:
    timeline = Timeline("52:54:00:00:00:01", "ipxe-bios")
    machine = SimpleNamespace(state="dhcp-discover", timeline=timeline, error=None,
                              finished=False)
    driver = _driver(machine)
    converted: list[int] = []
    real = SimDriver._convert

    def counting(events: list[Any]) -> Any:
        converted.append(len(events))
        return real(events)

    monkeypatch.setattr(sim_driver.SimDriver, "_convert", staticmethod(counting))
    timeline.add(0.1, "state", "dhcp-discover")
    timeline.add(0.2, "received", "OFFER", src_ip="10.0.0.3", proxy=True, pxe=True)
    first = driver.progress()["a"]
    timeline.add(0.3, "state", "bound")
    second = driver.progress()["a"]
    assert converted == [2, 1]
    assert [e.summary for e in first.timeline] == ["dhcp-discover", "OFFER"]
    assert [e.summary for e in second.timeline] == ["dhcp-discover", "OFFER", "bound"]
    assert second.answered_by == ["10.0.0.3"] and second.timeline[1].peer == "10.0.0.3"


def test_a_new_machine_for_the_copy_starts_its_record_again() -> None:
    old = Timeline("52:54:00:00:00:01", "ipxe-bios")
    old.add(0.1, "state", "dhcp-discover")
    machine = SimpleNamespace(state="x", timeline=old, error=None, finished=False)
    driver = _driver(machine)
    driver.progress()
    new = Timeline("52:54:00:00:00:01", "ipxe-bios")
    new.add(0.5, "state", "tftp")
    fleet_machines: list[Any] = driver._where["a"][0].fleet.machines
    fleet_machines[0] = SimpleNamespace(state="tftp", timeline=new, error=None, finished=False)
    assert [e.summary for e in driver.progress()["a"].timeline] == ["tftp"]


def test_a_retrying_copy_counts_as_finished_after_three_boots_in_the_final_world() -> None:
    """Emulated firmware reboots forever; the driver stops watching it (finished, with its
    last error and why) only after 3 failed boots that began once every step was played."""
    machine = SimpleNamespace(state="rebooting", timeline=Timeline("52:54:00:00:00:01", "x"),
                              error="PXE-E53: no boot filename received", finished=False,
                              failed_starts=[])
    driver = _driver(machine, steps=(0.0, 5.0))
    running = threading.Event()
    fleet_thread = threading.Thread(target=running.wait, daemon=True)  # the fleet is alive
    driver._where["a"][0].thread = fleet_thread
    fleet_thread.start()
    try:
        _watch_until_settled(driver, machine)
    finally:
        running.set()
        fleet_thread.join()


def _watch_until_settled(driver: SimDriver, machine: Any) -> None:
    driver._origin = time.monotonic()  # the run's clock is at 0: the step at 5 s is pending
    machine.failed_starts.extend(time.monotonic() for _ in range(5))
    assert not driver.progress()["a"].finished  # a step to come may change everything
    driver._origin -= 10  # the run is at 10 s: every step is due
    driver.progress()  # the first poll after the last step may precede its play
    assert driver.progress()["a"].finished is False and driver.quiet_since is not None
    machine.failed_starts.extend(driver.quiet_since + i for i in (0.1, 0.2))
    assert not driver.progress()["a"].finished  # two boots in the final world: not yet
    machine.failed_starts.append(driver.quiet_since + 0.3)
    prog = driver.progress()["a"]
    assert prog.finished and prog.phase == "failed"
    assert prog.error is not None and prog.error.startswith("PXE-E53: no boot filename")
    assert "failed 8 times" in prog.error and "keeps rebooting" in prog.error


class _OnFleet:
    """A fleet whose machines are already declared: power_on only records the call."""

    def __init__(self, machine: Any) -> None:
        self.machines = [machine]
        self.powered: list[list[str]] = []

    def power_on(self, macs: list[str]) -> None:
        self.powered.append(macs)


def _stepped_driver(machine: Any, steps: list[tuple[float, str]]) -> SimDriver:
    scenario = SimpleNamespace(time_scale=0.1, timeout=9,
                               steps=[SimpleNamespace(at=at, action=a) for at, a in steps])
    driver = SimDriver(cast(Any, None), cast(Any, scenario))
    for key in ("a", "b"):
        driver.plans[key] = cast(Any, SimpleNamespace(mac=f"52:54:00:00:00:0{len(key)}"))
        driver._where[key] = (_Run(cast(Any, _OnFleet(machine)),
                                   threading.Thread(target=lambda: None)), 0)
    return driver


def _retrying() -> Any:
    return SimpleNamespace(state="rebooting", timeline=Timeline("52:54:00:00:00:01", "x"),
                           error="PXE-E53: no boot filename received", finished=False,
                           failed_starts=[])


def test_a_power_on_that_is_the_last_step_opens_the_final_world_itself() -> None:
    """Only power-ons at the end: the boots they start are the final world's first, so the
    third failed boot after the power-on settles the machine, with no poll needed first."""
    machine = _retrying()
    driver = _stepped_driver(machine, [(0.0, "power_on")])
    running = threading.Event()
    thread = threading.Thread(target=running.wait, daemon=True)
    driver._where["a"][0].thread = thread
    thread.start()
    try:
        assert driver.quiet_since is None
        driver.power_on(["a"], 0.0)
        assert driver.quiet_since is not None
        machine.failed_starts.extend(driver.quiet_since + i for i in (0.01, 3.0))
        assert not driver.progress()["a"].finished
        machine.failed_starts.append(driver.quiet_since + 6.0)
        assert driver.progress()["a"].finished
    finally:
        running.set()
        thread.join()


@pytest.mark.parametrize("steps", [
    [(0.0, "power_on"), (5.0, "stop_proxy")],                     # a later step changes it
    [(0.0, "power_on"), (5.0, "power_on"), (5.0, "wan_down")],     # so does one beside it
    [(0.0, "power_on"), (5.0, "power_off")],                       # one machine fewer
])
def test_a_power_on_is_not_the_final_world_when_another_step_may_follow(
        steps: list[tuple[float, str]]) -> None:
    driver = _stepped_driver(_retrying(), steps)
    driver.power_on(["a"], 6.0)  # even when played late, with every step due
    assert driver.quiet_since is None


def test_only_the_first_of_the_last_power_ons_opens_the_final_world() -> None:
    """power_on, a proxy stop, then two power-ons at the end: not the first call (the stop
    is still to come), but the second; the third starts boots in that same world."""
    driver = _stepped_driver(_retrying(), [(0.0, "power_on"), (0.05, "stop_proxy"),
                                           (0.1, "power_on"), (0.1, "reset")])
    driver.power_on(["a"], 0.2)  # the runner, late, plays every step in this one pass
    assert driver.quiet_since is None
    driver.power_on(["b"], 0.2)
    opened = driver.quiet_since
    assert opened is not None
    driver.power_on(["a"], 0.2)
    assert driver.quiet_since == opened
