"""Which figure the whole-site judge takes for a node's clock (``clock_within_s``,
NTP-1): the offset the node measured against the site's NTP server after syncing,
else its reported clock minus the Control Plane's time of registration."""

from __future__ import annotations

import pytest

from harness.judge.clocks import node_clock
from harness.rules.site_facts import NodeClock

pytestmark = pytest.mark.unit

MAC = "52:54:00:00:00:01"
NTP = {"clock_source": "ntp", "clock_server": "10.1.0.2"}


def test_an_ntp_measured_offset_wins_over_the_arrival_time() -> None:
    """A synced node whose registration took 1.53 s to be recorded is 0.02 s off."""
    facts = {"clock_unix": 998.47, "clock_offset_s": 0.02, **NTP}
    assert node_clock(MAC, facts, 1000.0, "10.1.0.2") == NodeClock(MAC, 0.02, "10.1.0.2")


def test_a_node_still_off_after_the_sync_keeps_its_offset() -> None:
    facts = {"clock_unix": 1000.0, "clock_offset_s": -2.5, **NTP}
    assert node_clock(MAC, facts, 1000.0, "10.1.0.2") == NodeClock(MAC, -2.5, "10.1.0.2")


def test_without_an_ntp_offset_the_registration_time_is_the_reference() -> None:
    clock = node_clock(MAC, {"clock_unix": 998.47}, 1000.0, "")
    assert clock is not None and clock.source == "" and clock.offset_s == pytest.approx(-1.53)
    # NTP offered but the sync failed: no offset, the site's server still named
    assert node_clock(MAC, {"clock_unix": 1003.0, "clock_offset_s": None}, 1000.0,
                      "10.1.0.2") == NodeClock(MAC, 3.0, "10.1.0.2")


def test_no_clock_reported_is_none() -> None:
    assert node_clock(MAC, {}, 1000.0, "") is None


def test_a_two_way_offset_with_its_bound_wins_over_the_arrival_time() -> None:
    """No NTP: a TCG guest stamped clock_unix 1.5 s before its registration was
    recorded, but its two-way exchange with the Control Plane measured 0.05 +/- 0.2 s."""
    facts = {"clock_unix": 998.5, "clock_source": "http", "clock_offset_s": 0.05,
             "clock_error_s": 0.2, "clock_server": "http://cp/api/v1/time"}
    clock = node_clock(MAC, facts, 1000.0, "")
    assert clock == NodeClock(MAC, 0.05, "", 0.2)
    assert clock is not None and not clock.beyond(1.0) and clock.off_by() == "+0.050 s +/- 0.200 s"


def test_a_bound_does_not_hide_a_clock_really_off() -> None:
    assert NodeClock(MAC, -3.0, "", 0.3).beyond(1.0)
    assert NodeClock(MAC, 1.15, "", 0.2).beyond(1.0) is False
    assert NodeClock(MAC, 1.25, "", 0.2).beyond(1.0)
