"""The storm bench's client-phase split, median run and segment size, on fixed data."""

from __future__ import annotations

from typing import Any

import pytest

from bench.storm import _median_run, client_phases, segment_prefix
from harness.judge.result import MachineResult, TimelineEvent

pytestmark = pytest.mark.unit


def _machine(states: list[tuple[float, str]]) -> MachineResult:
    return MachineResult(
        name="m", mac="52:54:00:00:00:01", firmware="seabios-ipxe", segment="lan",
        cluster="storm", driver="sim", state="Ready",
        timeline=[TimelineEvent(t=t, kind="state", summary=s) for t, s in states]
        + [TimelineEvent(t=0.05, kind="sent", summary="DISCOVER")])


def test_client_phases_add_each_state_until_the_next_and_group_the_dhcp_rounds() -> None:
    m = _machine([(0.0, "power-on"), (0.0, "dhcp-discover"), (1.0, "dhcp-request"),
                  (1.5, "bound"), (1.5, "pxe-request"), (1.7, "tftp"), (5.7, "ipxe"),
                  (5.7, "dhcp-discover"), (6.2, "bound"), (6.2, "script"), (6.5, "kernel"),
                  (7.0, "agent"), (7.2, "clock"), (7.3, "registered"), (7.4, "ready")])
    phases = client_phases([m, m])
    assert phases["tftp"] == {"p50": 4.0, "p95": 4.0, "sum": 8.0, "machines": 2}
    assert phases["dhcp"]["p50"] == 2.0  # both DHCP rounds (firmware and iPXE)
    assert phases["http"]["p50"] == 0.8 and phases["agent"]["p50"] == 0.4
    assert next(iter(phases)) == "tftp"  # biggest share first


def test_the_median_run_is_one_real_run_and_a_run_not_all_ready_counts_slowest() -> None:
    runs: list[dict[str, Any]] = [{"time_to_all_ready_s": None, "n": 1},
                                  {"time_to_all_ready_s": 30.0, "n": 2},
                                  {"time_to_all_ready_s": 20.0, "n": 3}]
    assert _median_run(runs)["n"] == 2


def test_the_segment_pool_holds_the_storm() -> None:
    assert segment_prefix(200) == segment_prefix(1000) == 20
    assert 2 ** (32 - segment_prefix(5000)) // 2 >= 5000
