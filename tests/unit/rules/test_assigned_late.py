"""A MAC the Control Plane assigns during the capture (``RuleContext.served_from``): before
that moment nothing is owed to it (TIME-1) and nothing may be sent to it (SILENT-5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from failing import shows_failing

from harness.capture import decode_pcap
from harness.capture.synth_flows import BIOS, Flow
from harness.rules import Report, RuleContext, check_capture

pytestmark = pytest.mark.unit

PROXY_IP = "10.0.0.2"


def silent_then_served(f: Flow) -> None:
    """A DISCOVER the proxy leaves alone, then, 5 s later, the same client served."""
    f.discover(BIOS)
    f.site_offer(BIOS)
    f.discover(BIOS, dt=5.0)
    f.site_offer(BIOS)
    f.proxy_offer(BIOS, "a", "undionly.kpxe")
    f.site_request_ack(BIOS)
    f.tftp(BIOS, "undionly.kpxe")


def judged(tmp_path: Path, assigned_after_first: float | None) -> Report:
    f = Flow()
    silent_then_served(f)
    capture = decode_pcap(f.b.write(str(tmp_path / "late.pcap")))
    first = min(e.time for e in capture.dhcp)
    served_from = ({} if assigned_after_first is None
                   else {BIOS.mac: first + assigned_after_first})
    return check_capture(capture, RuleContext(
        proxies=frozenset({PROXY_IP}), serves={PROXY_IP: frozenset({BIOS.mac})},
        served_from=served_from))


def test_silence_before_the_assignment_is_right(tmp_path: Path) -> None:
    report = judged(tmp_path, 2.0)
    assert report.failures() == [], [f.message for f in report.failures()]
    assert [f.verdict.value for f in report.for_rule("TIME-1")] == ["pass"]
    assert [f.verdict.value for f in report.for_rule("SILENT-5")] == ["pass"]


def test_without_the_assignment_time_the_silence_is_a_time1_failure(tmp_path: Path) -> None:
    """The same capture, judged as if the MAC were served all along."""
    assert judged(tmp_path, None).failed_rules() == {"TIME-1"}


@shows_failing("SILENT-5")
def test_an_answer_before_the_assignment_fails_silent5(tmp_path: Path) -> None:
    report = judged(tmp_path, 60.0)  # assigned a minute after everything on the wire
    assert "SILENT-5" in report.failed_rules()
    messages = [f.message for f in report.for_rule("SILENT-5")]
    assert f"{PROXY_IP} sent OFFER to {BIOS.mac}, a MAC it does not serve yet: the Control " \
           "Plane assigned it only later" in messages
