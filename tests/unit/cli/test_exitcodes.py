"""Which error means which exit status: the user's input (2) or the host (3)."""

from __future__ import annotations

import pytest

from harness.errors import ComponentError, DependencyError, LabError, TopologyError, WaitTimeout
from harness.exitcodes import INCOMPLETE, USAGE, status_of
from harness.scenario import ScenarioError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("exc", [DependencyError("no dnsmasq"), LabError("netns"),
                                 ComponentError("dnsmasq exited"), WaitTimeout("no lease")])
def test_host_errors_are_incomplete(exc: Exception) -> None:
    assert status_of(exc) == INCOMPLETE  # type: ignore[arg-type]


def test_input_errors_are_usage() -> None:
    assert status_of(TopologyError("two hosts named a")) == USAGE
    assert status_of(ScenarioError("x.yaml", 3, "unknown key")) == USAGE


def test_an_error_class_can_say_its_status() -> None:
    class Odd(LabError):
        exit_status = 1

    assert status_of(Odd("x")) == 1
