"""Every MUST and SHOULD rule has a test that shows it FAIL.

A rule that can only ever say PASS or not-applicable is not a check. The defect table
of test_defects.py covers most rules; the rest name their failing test here. The test
fails when a catalogued rule has neither, or when a named test does not exist — so a
new rule cannot land without the case that breaks it.
"""

from __future__ import annotations

import importlib

import pytest

from harness.rules import RULES, Level

pytestmark = pytest.mark.unit

# rule -> (module under tests/unit/rules, test function) for rules outside the table
FAILING_ELSEWHERE = {
    "SITE-3": ("test_defects", "test_served_client_left_unanswered_fails_site3"),
    "TFTP-2": ("test_real_world", "test_missing_zero_length_final_block_is_tftp2"),
    "TFTP-7": ("test_defects", "test_sorcerers_apprentice_is_flagged"),
    "TIME-2": ("test_defects", "test_late_offer_is_a_should_failure"),
    "TIME-3": ("test_defects", "test_late_4011_ack_breaks_time3"),
    "WAN-1": ("test_site_services",
              "test_wan1_passes_outbound_tls_and_fails_every_other_crossing"),
    "WAN-2": ("test_site_services", "test_wan2_nat_and_outage"),
    "WAN-3": ("test_site_services", "test_wan3_verified_tls_passes_and_every_shortcut_fails"),
    "DNS-1": ("test_site_services", "test_dns1"),
    "NTP-1": ("test_site_services", "test_ntp1"),
}


def _module(name: str):
    return importlib.import_module(f"{__package__}.{name}" if __package__ else name)


def failing_tests() -> dict[str, list[str]]:
    """Rule id -> the tests that show it failing."""
    out: dict[str, list[str]] = {}
    for case in _module("test_defects").DEFECTS:
        for rule in ({case[4]} if isinstance(case[4], str) else case[4]):
            out.setdefault(rule, []).append(f"test_defects::{case[0]}")
    for rule, (module, test) in FAILING_ELSEWHERE.items():
        assert hasattr(_module(module), test), f"{module}.{test} (named for {rule}) is gone"
        out.setdefault(rule, []).append(f"{module}::{test}")
    return out


def test_every_must_and_should_rule_has_a_failing_test() -> None:
    judged = {r.id for r in RULES.values() if r.level in (Level.MUST, Level.SHOULD)}
    missing = sorted(judged - set(failing_tests()))
    assert not missing, f"rules no test shows failing: {missing}"


def test_may_rules_have_nothing_to_fail() -> None:
    # MAY rules report what they saw; a defect case naming one would be a mistake
    may = {r.id for r in RULES.values() if r.level is Level.MAY}
    assert not may & set(failing_tests())
