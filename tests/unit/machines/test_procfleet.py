"""The process fleet's bookkeeping: machines dealt out in turn, results merged back in the
specs' order, a child's progress applied to the parent's mirror, the process count read
from the environment."""

from __future__ import annotations

import pytest

from harness.builder.sim_driver import PROCESSES_ENV, fleet_processes
from harness.errors import FlexlabError
from harness.machines.sim.errors import SimMachineError
from harness.machines.sim.fleet import FleetResult
from harness.machines.sim.procfleet import MachineMirror, _Ident, deal, merge_results
from harness.machines.sim.timeline import EmulatorEvent, Timeline

pytestmark = pytest.mark.unit


def test_machines_are_dealt_in_turn_so_every_kind_reaches_every_process() -> None:
    assert deal(7, 3) == [[0, 3, 6], [1, 4], [2, 5]]
    assert deal(2, 4) == [[0], [1]]  # no empty hands: no idle processes
    with pytest.raises(SimMachineError):
        deal(3, 0)


def _result(macs: list[str], state: str = "done", **counters: int) -> FleetResult:
    return FleetResult(machines=[{"mac": m, "state": state} for m in macs], wall_seconds=1.0,
                       **counters)


def test_merged_results_come_back_in_the_specs_order_with_counters_summed() -> None:
    hands = deal(5, 2)  # [[0, 2, 4], [1, 3]]
    merged = merge_results(5, [
        (hands[1], _result(["m1", "m3"], frames_sent=2, kernel_drops=1)),
        (hands[0], FleetResult(machines=[{"mac": "m0", "state": "done"},
                                         {"mac": "m2", "state": "failed"},
                                         {"mac": "m4", "state": "done"}],
                               wall_seconds=3.0, frames_sent=5)),
    ])
    assert [m["mac"] for m in merged.machines] == ["m0", "m1", "m2", "m3", "m4"]
    assert merged.frames_sent == 7 and merged.kernel_drops == 1
    assert merged.wall_seconds == 3.0 and merged.states == {"done": 4, "failed": 1}


def test_a_child_that_reports_too_few_machines_is_an_error_not_a_gap() -> None:
    with pytest.raises(SimMachineError, match="reported 1 machines for 2"):
        merge_results(3, [([0, 2], _result(["m0"])), ([1], _result(["m1"]))])
    with pytest.raises(SimMachineError, match=r"no result for machines \[1\]"):
        merge_results(3, [([0, 2], _result(["m0", "m2"]))])


def test_a_mirror_grows_its_timeline_by_each_progress_message() -> None:
    m = MachineMirror(_Ident("52:54:00:00:00:01"), Timeline("52:54:00:00:00:01", "edk2-x64"))
    first = EmulatorEvent(0.0, "state", "power-on")
    second = EmulatorEvent(0.5, "state", "dhcp-discover")
    m.apply(("power-on", [first], None, False, []))
    m.apply(("dhcp-discover", [second], "PXE-E51: no offer", False, [12.5]))
    assert m.timeline.events == [first, second] and m.state == "dhcp-discover"
    assert m.error == "PXE-E51: no offer" and m.failed_starts == [12.5] and not m.finished


@pytest.mark.parametrize("raw, want", [("", 1), ("1", 1), (" 4 ", 4)])
def test_the_process_count_comes_from_the_environment(
        monkeypatch: pytest.MonkeyPatch, raw: str, want: int) -> None:
    monkeypatch.setenv(PROCESSES_ENV, raw)
    assert fleet_processes() == want


@pytest.mark.parametrize("raw", ["0", "-2", "two", "1.5"])
def test_a_process_count_that_is_no_whole_number_above_zero_is_refused(
        monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(PROCESSES_ENV, raw)
    with pytest.raises(FlexlabError, match=PROCESSES_ENV):
        fleet_processes()
