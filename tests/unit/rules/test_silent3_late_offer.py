"""SILENT-3 judges answers to a REQUEST; a proxy's OFFER that arrives after the client's
REQUEST (same xid) still answers the DISCOVER. Seen in the sim tier: with two servers
on a segment the slower one's OFFER lands 2 ms after the client's REQUEST for the site
server's address, and SILENT-3 failed the MUST expectation of a correct run."""

from __future__ import annotations

import pytest

from harness.capture.events import Capture, DhcpEvent
from harness.rules import RuleContext, check_capture
from harness.rules.model import Verdict

pytestmark = pytest.mark.unit

MAC, SITE, PROXY = "52:54:00:00:00:01", "10.0.0.1", "10.0.0.2"


def event(frame: int, *, op: int, msg: str, src: str, yiaddr: str = "0.0.0.0",
          server_id: str | None = None) -> DhcpEvent:
    return DhcpEvent(
        frame=frame, time=frame / 1000, src_mac=MAC if op == 1 else "02:00:00:00:00:02",
        dst_mac="ff:ff:ff:ff:ff:ff", src_ip=src, dst_ip="255.255.255.255",
        sport=68 if op == 1 else 67, dport=67 if op == 1 else 68, op=op, htype=1, hlen=6,
        hops=0, xid=7, secs=0, flags=0x8000, broadcast=True, ciaddr="0.0.0.0",
        yiaddr=yiaddr, siaddr="0.0.0.0", giaddr="0.0.0.0", chaddr=MAC, sname="", file="",
        sname_raw=b"", file_raw=b"", magic_ok=True, msg_type=msg, options=(),
        end_present=True, options_error=None, overload=None, dhcp_len=300,
        vendor_class="PXEClient:Arch:00000:UNDI:002001" if op == 1 else "PXEClient",
        server_id=server_id if server_id else (src if op == 2 else None))


def silent3(*late: DhcpEvent) -> list[Verdict]:
    events = [
        event(1, op=1, msg="DISCOVER", src="0.0.0.0"),
        event(2, op=2, msg="OFFER", src=SITE, yiaddr="10.0.0.50"),
        event(3, op=1, msg="REQUEST", src="0.0.0.0", server_id=SITE),
        *late,
    ]
    ctx = RuleContext(proxies=frozenset({PROXY}), site_dhcp=frozenset({SITE}))
    report = check_capture(Capture("x.pcap", 10, dhcp=events), ctx, rules=["SILENT-3"])
    return [f.verdict for f in report.findings]


def test_a_late_proxy_offer_is_no_answer_to_the_request() -> None:
    assert silent3(event(4, op=2, msg="OFFER", src=PROXY)) == [Verdict.PASS]


def test_a_proxy_ack_to_the_request_for_the_site_server_still_fails() -> None:
    assert silent3(event(4, op=2, msg="ACK", src=PROXY)) == [Verdict.FAIL]
