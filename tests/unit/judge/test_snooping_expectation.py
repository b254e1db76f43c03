"""expect.snooping: exactly the named ports dropped DHCP server replies, said with what."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.capture.events import Capture
from harness.judge.observed import Observed, from_plain, to_plain
from harness.judge.snooping import judge_snooping
from harness.plan import plan
from harness.scenario.loader import load_scenario

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def verdicts(name: str, drops: dict[str, dict[str, int]] | None) -> list[tuple[str, str]]:
    scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    observed = Observed(scenario={}, switch_drops=drops or {},
                        addresses={"bp1@lan": "10.0.0.3"})
    site = plan(scenario)
    return [(r.verdict, r.detail) for r in judge_snooping(scenario, site, observed,
                                                          {"lan": Capture("lan.pcap", 0)})]


def test_the_untrusted_proxy_port_dropping_passes_and_is_named() -> None:
    assert verdicts("snooping", {"lan": {"bp1": 6, "dhcp0": 0, "cp": 0}}) == [
        ("pass", "bp1's port dropped 6 DHCP server replies (no DHCP reply from it in the "
                 "capture)")]


def test_no_drop_where_one_was_expected_fails() -> None:
    [(verdict, detail)] = verdicts("snooping", {"lan": {"bp1": 0, "dhcp0": 0}})
    assert verdict == "fail"
    assert detail == "no port dropped anything; expected drops on bp1's port, counted none"


def test_a_drop_on_a_trusted_setup_fails_naming_the_port() -> None:
    [(verdict, detail)] = verdicts("snooping-trusted", {"lan": {"bp1": 0, "dhcp0": 2}})
    assert verdict == "fail"
    assert detail.startswith("site-dhcp's port dropped 2 DHCP server replies")
    assert detail.endswith("unexpected: site-dhcp")


def test_counters_never_read_fail() -> None:
    [(verdict, detail)] = verdicts("snooping-trusted", None)
    assert (verdict, detail) == ("fail", "the switch's counters were not read in this run")


def test_drops_survive_the_run_json_round_trip() -> None:
    observed = Observed(scenario={"name": "x"}, switch_drops={"lan": {"bp1": 3}})
    assert from_plain(to_plain(observed)).switch_drops == {"lan": {"bp1": 3}}
