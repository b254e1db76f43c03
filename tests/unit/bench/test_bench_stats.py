"""perfdhcp parsing, percentiles and the ladder's bisection: the figures the report rests on."""

from __future__ import annotations

from typing import Any

import pytest

from bench.errors import ParseError
from bench.proxydhcp import client_macs, next_bisection
from bench.stats import max_sustained, parse_perfdhcp, percentiles

pytestmark = pytest.mark.unit

PERFDHCP_OUT = """\
Running: perfdhcp -4 -i -r 1000 -n 2000 -p 5 -x t 10.72.203.2
Scenario: basic.
Multi-thread mode enabled.
***Rate statistics***
Rate: 997.752 DISCOVER-OFFER/second, expected rate: 1000

***Malformed Packets***
Malformed packets: 0
***Statistics for: DISCOVER-OFFER***
sent packets: 2001
received packets: 1999
drops: 2
drops ratio: 0.09995 %
orphans: 0
rejected leases: 0
non unique addresses: 0

min delay: 0.105 ms
avg delay: 0.355 ms
max delay: 7.434 ms
std deviation: 0.567 ms
collected packets: 0

***Timestamps for packets: DISCOVER-OFFER***
sent / received: 000000.000116 / 000000.000863
sent / received: 000000.002152 / 000000.002476
sent / received: 000001.943780 / 000001.947121
"""


def test_parse_perfdhcp_counts_rate_and_timers() -> None:
    report = parse_perfdhcp(PERFDHCP_OUT)
    assert (report.sent, report.received, report.drops) == (2001, 1999, 2)
    assert report.rate == pytest.approx(997.752)
    assert report.drop_ratio == pytest.approx(2 / 2001)
    assert report.latencies_ms == pytest.approx([0.747, 0.324, 3.341], abs=1e-6)


def test_parse_perfdhcp_without_statistics_raises_with_the_output() -> None:
    with pytest.raises(ParseError, match="Packets exchange not specified"):
        parse_perfdhcp("ERROR: running perfdhcp: Packets exchange not specified\n")


def test_parse_perfdhcp_without_timers_has_no_latencies() -> None:
    text = PERFDHCP_OUT.split("***Timestamps")[0]
    assert parse_perfdhcp(text).latencies_ms == []


def test_percentiles_are_nearest_rank_observed_values() -> None:
    values = [float(v) for v in range(1, 101)]  # 1 … 100 ms
    assert percentiles(values) == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    assert percentiles([3.0, 1.0, 2.0]) == {"p50": 2.0, "p95": 3.0, "p99": 3.0}


def test_percentiles_of_nothing_are_none() -> None:
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None}


def _step(offered: int, answered: float, loss: float) -> dict[str, float]:
    return {"offered_per_s": offered, "answered_per_s": answered, "drop_ratio": loss}


def test_max_sustained_picks_the_best_step_under_the_limit() -> None:
    steps = [_step(1000, 1000, 0.0), _step(2000, 1995, 0.002), _step(4000, 3500, 0.12)]
    best = max_sustained(steps)
    assert best is not None and best["offered_per_s"] == 2000
    assert max_sustained([_step(1000, 500, 0.5)]) is None


def test_bisection_between_last_good_and_first_bad() -> None:
    steps = [_step(1000, 1000, 0.0), _step(2000, 2000, 0.0), _step(4000, 3000, 0.25)]
    assert next_bisection(steps) == 3000
    assert next_bisection([_step(1000, 1000, 0.0), _step(1050, 900, 0.1)]) is None
    assert next_bisection([_step(1000, 1000, 0.0)]) is None
    assert next_bisection([_step(1000, 100, 0.9)]) is None


def test_client_macs_are_distinct_and_well_formed() -> None:
    macs = client_macs(70000)
    assert len(set(macs)) == 70000
    assert macs[0] == "00:0c:01:00:00:00" and macs[256] == "00:0c:01:00:01:00"
    assert all(len(m) == 17 for m in macs[:10])


def _short(offered: int, answered: float) -> dict[str, float | bool]:
    return {**_step(offered, answered, 0.0), "generator_short": True}


def test_a_ladder_stops_where_the_generator_falls_short_and_drops_that_step() -> None:
    from bench.proxydhcp import ladder, ladder_limit

    lat = {"latency_ms": {"p50": 0.1, "p95": 0.2, "p99": 0.3}}
    answers: dict[int, dict[str, Any]] = {
        1000: {**_step(1000, 1000, 0.0), **lat}, 2000: {**_step(2000, 2000, 0.0), **lat},
        4000: {**_short(4000, 3100), **lat}}
    ran: list[int] = []

    def step(rate: int) -> dict[str, Any]:
        ran.append(rate)
        return answers[rate]

    steps = ladder(step, (1000, 2000, 4000, 8000), "test", refine=0)
    assert ran == [1000, 2000, 4000]  # no 8000: the generator could not send 4000
    assert ladder_limit(steps) == "generator"
    assert max_sustained([s for s in steps if not s.get("generator_short")]) == answers[2000]


def test_the_bisection_searches_below_a_rate_the_generator_could_not_send() -> None:
    from bench.proxydhcp import ladder, ladder_limit

    lat = {"latency_ms": {"p50": 0.1, "p95": 0.2, "p99": 0.3}}
    answers: dict[int, dict[str, Any]] = {
        1000: {**_step(1000, 1000, 0.0), **lat}, 2000: {**_step(2000, 2000, 0.0), **lat},
        4000: {**_short(4000, 3100), **lat}, 3000: {**_step(3000, 2500, 0.2), **lat},
        2500: {**_step(2500, 2500, 0.0), **lat}}
    ran: list[int] = []

    def step(rate: int) -> dict[str, Any]:
        ran.append(rate)
        return answers[rate]

    steps = ladder(step, (1000, 2000, 4000, 8000), "test", refine=2)
    assert ran == [1000, 2000, 4000, 3000, 2500]
    assert ladder_limit(steps) == "server"  # 3000 lost answers the generator did send
    good = [s for s in steps if not s.get("generator_short")]
    assert max_sustained(good) == answers[2500]


def test_ladder_limit_says_who_ended_it() -> None:
    from bench.proxydhcp import ladder_limit

    assert ladder_limit([_step(1000, 1000, 0.0), _step(2000, 1500, 0.25)]) == "server"
    assert ladder_limit([_step(1000, 1000, 0.0), _step(2000, 2000, 0.0)]) == "ladder top"
    # loss below the best rate (a burst) does not make the best rate the server's limit
    assert ladder_limit([_step(1000, 900, 0.1), _step(2000, 2000, 0.0)]) == "ladder top"


def test_the_report_marks_a_rate_the_server_did_not_limit_as_a_lower_bound() -> None:
    from bench.report import _bounded

    assert _bounded(32000, "generator").startswith("≥ ")
    assert _bounded(32000, "ladder top").startswith("≥ ")
    assert not _bounded(32000, "server").startswith("≥")
    assert not _bounded(32000, None).startswith("≥")
