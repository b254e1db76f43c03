"""bench/storm_ab.py: configurations are NAME=TREE[:VAR=VALUE,...], and a configuration's
spread never counts a storm that did not get every machine Ready as a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.storm_ab import Config, parse_config, summarise

pytestmark = pytest.mark.unit


def test_a_configuration_names_a_tree_and_its_environment() -> None:
    assert parse_config("after=.") == Config("after", Path("."), {})
    assert parse_config("p2=/t:FLEXLAB_FLEET_PROCESSES=2,X=y") == Config(
        "p2", Path("/t"), {"FLEXLAB_FLEET_PROCESSES": "2", "X": "y"})


@pytest.mark.parametrize("bad", ["after", "=.", "after=", "p2=.:FLEXLAB_FLEET_PROCESSES"])
def test_a_configuration_without_name_tree_or_value_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_config(bad)


def test_a_storm_not_all_ready_is_counted_apart_not_as_a_time() -> None:
    runs = [{"time_to_all_ready_s": 30.0, "ready_s": {"p50": 12.0}, "verdict": "pass",
             "harness_cpu_s": {"machines": 20.0}, "dhcp_retransmissions": 100},
            {"time_to_all_ready_s": None, "ready_s": {"p50": 14.0}, "verdict": "fail",
             "harness_cpu_s": {}, "dhcp_retransmissions": 900},
            {"time_to_all_ready_s": 34.0, "ready_s": {"p50": 13.0}, "verdict": "pass",
             "harness_cpu_s": {"machines": 22.0}, "dhcp_retransmissions": 300}]
    s = summarise(runs)
    assert s["time_to_all_ready_s"] == {"median": 32.0, "min": 30.0, "max": 34.0, "n": 2}
    assert s["runs_not_all_ready"] == 1 and s["verdicts"] == ["pass", "fail", "pass"]
    assert s["harness_cpu_machines_phase_s"]["n"] == 2
    assert s["dhcp_retransmissions"]["median"] == 300
