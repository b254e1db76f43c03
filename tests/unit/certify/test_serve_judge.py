"""site-check --serve's per-MAC verdicts from what its Boot Proxy saw (no network: the views
are built from a synthetic capture and proxy log lines)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.capture.events import Capture, DhcpEvent, HttpEvent
from harness.sitecheck.model import CheckVerdict
from harness.sitecheck.serve import GAVE_UP_AFTER, MacWatch, judge, observe

pytestmark = pytest.mark.unit

MAC = "52:54:00:5e:00:01"
HTTP_PORT = 8080


def dhcp(t: float, *, op: int = 1, msg: str = "DISCOVER", dport: int = 67,
         giaddr: str = "0.0.0.0", yiaddr: str = "0.0.0.0",
         requested_ip: str | None = None, dst_ip: str = "255.255.255.255") -> DhcpEvent:
    return DhcpEvent(
        frame=int(t * 10), time=t, src_mac=MAC, dst_mac="ff:ff:ff:ff:ff:ff",
        src_ip="0.0.0.0", dst_ip=dst_ip, sport=68, dport=dport, op=op, htype=1,
        hlen=6, hops=0, xid=1, secs=0, flags=0, broadcast=False, ciaddr="0.0.0.0",
        yiaddr=yiaddr, siaddr="0.0.0.0", giaddr=giaddr, chaddr=MAC, sname="", file="",
        sname_raw=b"", file_raw=b"", magic_ok=True, msg_type=msg, options=(),
        end_present=True, options_error=None, overload=None, dhcp_len=300,
        requested_ip=requested_ip)


def offer_log(ts: float, to: str = "255.255.255.255:68") -> dict[str, Any]:
    return {"event": "dhcp_offer", "mac": MAC, "ts": ts, "to": to}


def test_nothing_arrived_is_machine_off_or_no_helper() -> None:
    w = observe(MAC, Capture("x", 0), [], HTTP_PORT)
    r = judge(w, "eth0", 30)
    assert r.verdict is CheckVerdict.FAIL and r.name == "proxydhcp.serve"
    assert f"nothing from {MAC} reached this host" in r.summary
    assert "no DHCP helper/relay toward the Boot Proxy" in r.summary
    assert not w.decided  # waiting longer could still change it


def test_answered_and_went_on_over_http_passes_directly() -> None:
    cap = Capture("x", 3, dhcp=[dhcp(1.0), dhcp(1.2, msg="REQUEST",
                                                  requested_ip="10.0.0.50")],
                  http=[HttpEvent(frame=9, time=2.0, src_mac=MAC, dst_mac="aa:aa:aa:aa:aa:aa",
                                  src_ip="10.0.0.50", dst_ip="10.0.0.2", sport=40000,
                                  dport=HTTP_PORT, kind="request", method="GET",
                                  path=f"/boot/{MAC}.ipxe")])
    w = observe(MAC, cap, [offer_log(1.01)], HTTP_PORT)
    assert w.went_on and w.decided
    r = judge(w, "eth0", 5)
    assert r.verdict is CheckVerdict.PASS
    assert "went on (HTTP request) directly" in r.summary


def test_relayed_4011_request_passes_through_the_relay() -> None:
    cap = Capture("x", 2, dhcp=[dhcp(1.0, giaddr="10.1.0.1"),
                                dhcp(2.0, msg="REQUEST", dport=4011)])
    r = judge(observe(MAC, cap, [offer_log(1.01, "10.1.0.1:67")], HTTP_PORT), "eth0", 5)
    assert r.verdict is CheckVerdict.PASS
    assert r.summary.endswith("(boot-server request on 4011) through relay giaddr 10.1.0.1")


def test_answered_but_ignored_is_the_snooping_diagnosis() -> None:
    discovers = [dhcp(float(t)) for t in range(1, GAVE_UP_AFTER + 2)]
    w = observe(MAC, Capture("x", len(discovers), dhcp=discovers),
                [offer_log(d.time + 0.01) for d in discovers], HTTP_PORT)
    assert w.discovers_after_offer == GAVE_UP_AFTER and w.decided
    r = judge(w, "eth0", 20)
    assert r.verdict is CheckVerdict.FAIL
    assert r.summary == (f"the Boot Proxy answered {MAC} {GAVE_UP_AFTER + 1} times but the "
                         "machine never acted on it: the reply was dropped on the way (DHCP "
                         "snooping? trust the Boot Proxy's switch port)")
    assert "trust the Boot Proxy's switch port" in r.hint


def test_arrived_but_not_answered_shows_the_proxys_drop_reasons() -> None:
    w = observe(MAC, Capture("x", 1, dhcp=[dhcp(1.0)]),
                [{"event": "dhcp_drop", "mac": MAC, "reason": "not_pxe_client"}], HTTP_PORT)
    r = judge(w, "eth0", 10)
    assert r.verdict is CheckVerdict.FAIL and "not_pxe_client x1" in r.summary


def test_one_answer_and_silence_is_too_early_to_tell() -> None:
    w = MacWatch(MAC, discovers=1, offers_sent=1)
    assert judge(w, "eth0", 10).verdict is CheckVerdict.WARN


def test_other_macs_are_not_counted() -> None:
    other = {"event": "dhcp_offer", "mac": "52:54:00:5e:00:99", "ts": 1.0}
    assert observe(MAC, None, [other], HTTP_PORT).offers_sent == 0


def test_going_on_with_another_boot_proxy_does_not_count() -> None:
    cap = Capture("x", 2, dhcp=[dhcp(1.0), dhcp(2.0, msg="REQUEST", dport=4011,
                                                 dst_ip="10.0.0.7")])
    assert observe(MAC, cap, [offer_log(1.01)], HTTP_PORT, own_ip="10.0.0.9").requests_4011 == 0
    assert observe(MAC, cap, [offer_log(1.01)], HTTP_PORT, own_ip="10.0.0.7").requests_4011 == 1
