"""Rules on golden captures recorded from real firmware (drop-in fixtures).

Drop ``fixtures/pcaps/golden_<firmware>_<topology>.pcap`` in, with an optional
sidecar ``golden_....json``::

    {"proxy": ["10.0.0.2"], "serves": {"10.0.0.2": ["52:54:00:..."]},
     "expect_fail": [], "expect_pass": ["OFFER-2", "ACK4011-1"]}

Every golden capture must decode, and fail exactly the rules in
``expect_fail`` (default: none); rules in ``expect_pass`` must have passed
(so a capture that stops exercising a rule is noticed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.capture import decode_pcap
from harness.rules import RuleContext, Verdict, check_capture

pytestmark = pytest.mark.unit

PCAPS = Path(__file__).resolve().parents[3] / "fixtures" / "pcaps"
GOLDEN = sorted(PCAPS.glob("golden_*.pcap*"))


def _context(meta: dict) -> RuleContext:
    return RuleContext(
        proxies=frozenset(meta.get("proxy", [])),
        serves={
            ip: frozenset(m.lower() for m in macs) for ip, macs in meta.get("serves", {}).items()
        },
        site_dhcp=frozenset(meta.get("site_dhcp", [])),
        time_scale=float(meta.get("time_scale", 1.0)),
    )


def test_golden_captures_are_committed() -> None:
    assert GOLDEN, "no golden captures: record them with scripts/record-golden.py"


@pytest.mark.parametrize("pcap", GOLDEN, ids=[p.name for p in GOLDEN])
def test_golden_capture(pcap: Path) -> None:
    sidecar = pcap.with_suffix(".json")
    meta = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    report = check_capture(decode_pcap(str(pcap)), _context(meta))
    assert report.failed_rules() == set(meta.get("expect_fail", [])), [
        f"{f.rule_id} frames {f.frames}: {f.message}" for f in report.failures()
    ]
    for rule_id in meta.get("expect_pass", []):
        verdicts = {f.verdict for f in report.for_rule(rule_id)}
        assert verdicts == {Verdict.PASS}, rule_id
