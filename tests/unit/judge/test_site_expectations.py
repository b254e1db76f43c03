"""The per-machine whole-site expectations: ``dns: {resolves: …}`` (the site's BIND
answered the node's name with its address, and its address with its name where a
reverse zone exists) and ``clock_within_s`` (the clock it reported after NTP). Each is
shown passing and failing, and failing when the fact was never collected."""

from __future__ import annotations

import pytest

from harness.judge.expectations import site_expectations
from harness.rules.site_facts import DnsName, NodeClock, SiteFacts
from harness.scenario.model import MachineExpectation

pytestmark = pytest.mark.unit

MAC = "52:54:00:00:00:01"
GOOD = DnsName(MAC, "bios", "10.0.0.5", ("10.0.0.5",), ("bios.site.test.",))


def verdicts(exp: dict, site: SiteFacts | None) -> list[tuple[str, str]]:
    out = site_expectations(MachineExpectation.model_validate({"name": "bios", **exp}),
                            "bios", MAC, site)
    return [(r.verdict, r.detail) for r in out]


def test_a_name_that_resolves_both_ways_passes() -> None:
    [(verdict, detail)] = verdicts({"dns": {"resolves": True}}, SiteFacts(dns=(GOOD,)))
    assert verdict == "pass"
    assert "A 10.0.0.5" in detail and "PTR bios.site.test." in detail


def test_without_a_reverse_zone_the_a_record_alone_is_enough() -> None:
    name = DnsName(MAC, "bios", "10.0.0.5", ("10.0.0.5",), None)
    assert verdicts({"dns": {}}, SiteFacts(dns=(name,)))[0][0] == "pass"


@pytest.mark.parametrize(("name", "shown"), [
    (DnsName(MAC, "bios", "10.0.0.5", (), ("bios.site.test.",)), "A no answer"),
    (DnsName(MAC, "bios", "10.0.0.5", ("10.0.0.9",), ("bios.site.test.",)), "A 10.0.0.9"),
    (DnsName(MAC, "bios", "10.0.0.5", ("10.0.0.5",), ()), "PTR no answer"),
    (DnsName(MAC, "bios", "10.0.0.5", ("10.0.0.5",), ("uefi.site.test.",)), "PTR uefi"),
    (DnsName(MAC, "bios", "10.0.0.5", (), None, ("REFUSED: not authorised",)),
     "refused updates: REFUSED"),
])
def test_a_missing_or_wrong_record_fails_and_says_what_was_answered(
        name: DnsName, shown: str) -> None:
    [(verdict, detail)] = verdicts({"dns": {"resolves": True}}, SiteFacts(dns=(name,)))
    assert verdict == "fail" and shown in detail


def test_resolves_false_passes_only_when_the_name_is_absent() -> None:
    absent = DnsName(MAC, "bios", "10.0.0.5", (), None)
    assert verdicts({"dns": {"resolves": False}}, SiteFacts(dns=(absent,)))[0][0] == "pass"
    assert verdicts({"dns": {"resolves": False}}, SiteFacts(dns=(GOOD,)))[0][0] == "fail"


@pytest.mark.parametrize(("site", "why"), [
    (None, "no DNS server"),
    (SiteFacts(), "no DNS server"),
    (SiteFacts(dns=(), notes={"DNS-1": "the Control Plane's state could not be collected"}),
     "never Ready"),
    (SiteFacts(notes={"DNS-1": "the Control Plane's state could not be collected: x"}),
     "could not be collected"),
])
def test_a_name_never_looked_up_fails_with_the_reason(site: SiteFacts | None,
                                                      why: str) -> None:
    [(verdict, detail)] = verdicts({"dns": {"resolves": True}}, site)
    assert verdict == "fail" and why in detail


@pytest.mark.parametrize(("offset", "verdict"), [(0.2, "pass"), (-0.9, "pass"),
                                                 (1.5, "fail"), (-3.0, "fail")])
def test_clock_within_compares_the_reported_offset(offset: float, verdict: str) -> None:
    site = SiteFacts(clocks=(NodeClock(MAC, offset, "10.1.0.2"),))
    [(got, detail)] = verdicts({"clock_within_s": 1}, site)
    assert got == verdict
    assert f"{offset:+.3f} s off" in detail and "synced from 10.1.0.2" in detail


def test_a_clock_never_reported_fails_with_the_reason() -> None:
    assert verdicts({"clock_within_s": 1}, None)[0] == ("fail", verdicts(
        {"clock_within_s": 1}, SiteFacts())[0][1])
    other = SiteFacts(clocks=(NodeClock("52:54:00:00:00:02", 0.0, ""),))
    verdict, detail = verdicts({"clock_within_s": 1}, other)[0]
    assert verdict == "fail" and "never Ready" in detail


def test_the_expectations_are_validated() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="clock_within_s"):
        MachineExpectation.model_validate({"name": "a", "clock_within_s": 0})
    with pytest.raises(ValidationError, match="extra"):
        MachineExpectation.model_validate({"name": "a", "dns": {"answers": True}})
