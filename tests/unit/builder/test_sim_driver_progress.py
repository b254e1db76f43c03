"""SimDriver.progress follows a live machine's growing timeline without converting it
all again on every poll (a 1,000-machine storm polled that every 0.2 s)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any, cast

import pytest

from harness.builder import sim_driver
from harness.builder.sim_driver import SimDriver, _Run
from harness.machines.sim.timeline import Timeline

pytestmark = pytest.mark.unit


def _driver(machine: Any) -> SimDriver:
    driver = SimDriver(cast(Any, None), cast(Any, SimpleNamespace(time_scale=0.1, timeout=9)))
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
