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
