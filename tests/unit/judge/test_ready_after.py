"""Ready time is taken from the first Ready after the last power-on (a reset restarts it)."""

from __future__ import annotations

import pytest

from harness.judge.judge import ready_after

pytestmark = pytest.mark.unit

MAC = "52:54:00:00:00:01"
EVENTS = [
    {"kind": "node.ready", "subject": "52:54:00:00:00:02", "time": 100.5},
    {"kind": "node.ready", "subject": MAC, "time": 101.0},    # the first boot
    {"kind": "node.registered", "subject": MAC, "time": 109.0},
    {"kind": "node.ready", "subject": MAC, "time": 110.0},    # after the reset at 105
]


def test_a_reset_machine_is_timed_from_its_reset() -> None:
    assert ready_after(EVENTS, MAC, 105.0) == 110.0


def test_without_a_reset_the_first_ready_counts() -> None:
    assert ready_after(EVENTS, MAC, 100.0) == 101.0
    assert ready_after(EVENTS, MAC, None) == 101.0


def test_never_ready_since_power_on_is_none() -> None:
    assert ready_after(EVENTS, MAC, 111.0) is None
