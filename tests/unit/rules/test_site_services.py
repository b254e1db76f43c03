"""WAN-1..3, DNS-1 and NTP-1 on whole-site facts: each FAILs on the defect it names,
PASSes on a right site, and without facts says why it was not applied."""

from __future__ import annotations

import pytest
from failing import shows_failing

from harness.capture.events import Capture
from harness.rules import RuleContext, check_capture
from harness.rules.site_facts import (
    DnsName,
    NodeClock,
    OutageBoot,
    SiteFacts,
    TlsHop,
    WanFacts,
    WanFlow,
)

pytestmark = pytest.mark.unit
CP, NAT = "198.51.100.10", "198.51.100.1"


def verdicts(rule: str, site: SiteFacts | None) -> list[tuple[str, str]]:
    report = check_capture(Capture(path="x", frames=0), RuleContext(site=site), rules=[rule])
    return [(f.verdict.value, f.message) for f in report.findings]


def only(rule: str, site: SiteFacts | None) -> str:
    found = verdicts(rule, site)
    kinds = {v for v, _ in found}
    assert len(kinds) == 1, found
    return kinds.pop()


def out(dport: int, *, path: str = "wan", proto: str = "tcp", dst: str = CP,
        verdict: str = "accepted", packets: int = 5) -> WanFlow:
    return WanFlow("10.0.0.5", dst, proto, dport, "out", path, verdict, packets, "proxy bp1")


def wan(*flows: WanFlow, private: bool = False, seen: tuple[str, ...] = ()) -> WanFacts:
    return WanFacts((80, 443, 8888), private, NAT, flows, CP, seen)


# -- WAN-1 ---------------------------------------------------------------------------------
@shows_failing("WAN-1")
def test_wan1_passes_outbound_tls_and_fails_every_other_crossing() -> None:
    assert only("WAN-1", SiteFacts(wan=wan(out(443), out(8888)))) == "pass"
    inbound = WanFlow(CP, "10.0.0.2", "udp", 53, "in", "wan", "dropped", 3)
    found = verdicts("WAN-1", SiteFacts(wan=wan(out(443), inbound)))
    assert [v for v, _ in found] == ["fail"] and "opened into the site" in found[0][1]
    assert "only outbound TCP 80/443/8888" in verdicts("WAN-1", SiteFacts(
        wan=wan(out(22, verdict="dropped"))))[0][1]
    assert only("WAN-1", SiteFacts(wan=wan(out(123, proto="udp")))) == "fail"


def test_wan1_in_private_mode_the_control_plane_is_reached_only_in_the_tunnel() -> None:
    assert only("WAN-1", SiteFacts(wan=wan(out(443, path="tunnel"), private=True))) == "pass"
    found = verdicts("WAN-1", SiteFacts(wan=wan(out(443), private=True)))
    assert found[0][0] == "fail" and "outside the private WAN" in found[0][1]


def test_wan1_not_applied_without_a_wan_or_without_flows() -> None:
    assert only("WAN-1", None) == "not-applicable"
    assert only("WAN-1", SiteFacts()) == "not-applicable"
    assert only("WAN-1", SiteFacts(wan=wan())) == "not-applicable"
    assert only("WAN-1", SiteFacts(wan=wan(out(443, packets=0)))) == "not-applicable"


# -- WAN-2 ---------------------------------------------------------------------------------
@shows_failing("WAN-2")
def test_wan2_nat_and_outage() -> None:
    assert only("WAN-2", SiteFacts(wan=wan(seen=(NAT,)))) == "pass"
    assert only("WAN-2", SiteFacts(wan=wan(seen=(NAT, "10.0.0.5")))) == "fail"
    good = (OutageBoot("aa", True, True, True), OutageBoot("bb", False, False, False))
    assert only("WAN-2", SiteFacts(wan=wan(), outage=good)) == "pass"
    for bad, text in [(OutageBoot("aa", True, False, False), "got no answer"),
                      (OutageBoot("bb", False, True, False), "was answered"),
                      (OutageBoot("aa", True, True, False), "not Ready after")]:
        found = verdicts("WAN-2", SiteFacts(wan=wan(), outage=(bad,)))
        assert found[0][0] == "fail" and text in found[0][1]
    assert only("WAN-2", SiteFacts(wan=wan())) == "not-applicable"


# -- WAN-3 ---------------------------------------------------------------------------------
def hop(**kw: object) -> TlsHop:
    base: dict[str, object] = {"client": "proxy bp1", "url": f"https://{CP}:8000",
                               "crossed_wan": True, "scheme": "https", "verified": True}
    base.update(kw)
    return TlsHop(**base)  # type: ignore[arg-type]


@shows_failing("WAN-3")
def test_wan3_verified_tls_passes_and_every_shortcut_fails() -> None:
    assert only("WAN-3", SiteFacts(tls=(hop(),))) == "pass"
    assert only("WAN-3", SiteFacts(tls=(hop(scheme="http", verified=None),))) == "fail"
    assert only("WAN-3", SiteFacts(tls=(hop(verified=None),))) == "fail"
    assert only("WAN-3", SiteFacts(tls=(hop(verified=False, refused_reason="expired"),))) \
        == "fail"
    # a bad certificate served on purpose: refusing it, with the reason, is right
    assert only("WAN-3", SiteFacts(tls=(hop(verified=False, refused_reason="unknown-ca",
                                            expect_refusal=True),))) == "pass"
    assert only("WAN-3", SiteFacts(tls=(hop(verified=False, expect_refusal=True),))) == "fail"
    assert only("WAN-3", SiteFacts(tls=(hop(expect_refusal=True),))) == "fail"


def test_wan3_a_hop_inside_the_site_is_not_judged() -> None:
    assert only("WAN-3", SiteFacts(tls=(hop(crossed_wan=False, scheme="http"),))) \
        == "not-applicable"


# -- DNS-1 ---------------------------------------------------------------------------------
def name(host: str, ip: str, resolved: tuple[str, ...], ptr: tuple[str, ...] | None,
         mac: str = "52:54:00:00:00:01") -> DnsName:
    return DnsName(mac, host, ip, resolved, ptr)


@shows_failing("DNS-1")
def test_dns1() -> None:
    ok = name("worker1", "10.0.0.5", ("10.0.0.5",), ("worker1.site.test.",))
    assert only("DNS-1", SiteFacts(dns=(ok,))) == "pass"
    assert only("DNS-1", SiteFacts(dns=(name("worker1", "10.0.0.5", (), None),))) == "fail"
    assert only("DNS-1", SiteFacts(dns=(name("worker1", "10.0.0.5", ("10.0.0.6",), None),))) \
        == "fail"
    assert only("DNS-1", SiteFacts(dns=(name("worker1", "10.0.0.5", ("10.0.0.5",), ()),))) \
        == "fail"
    twin = name("worker1", "10.0.0.6", ("10.0.0.6",), None, mac="52:54:00:00:00:02")
    found = verdicts("DNS-1", SiteFacts(dns=(ok, twin)))
    assert any(v == "fail" and "unique" in m for v, m in found)
    assert only("DNS-1", SiteFacts(dns=())) == "not-applicable"
    assert only("DNS-1", SiteFacts()) == "not-applicable"


# -- NTP-1 ---------------------------------------------------------------------------------
@shows_failing("NTP-1")
def test_ntp1() -> None:
    assert only("NTP-1", SiteFacts(clocks=(NodeClock("aa", 0.2, "10.0.0.3"),))) == "pass"
    found = verdicts("NTP-1", SiteFacts(clocks=(NodeClock("aa", -1.4, ""),)))
    assert found[0][0] == "fail" and "-1.400 s" in found[0][1] and "no NTP" in found[0][1]
    assert only("NTP-1", SiteFacts(clocks=())) == "not-applicable"


def test_a_missing_fact_says_why() -> None:
    facts = SiteFacts(notes={"NTP-1": "the VM console was not readable"})
    found = verdicts("NTP-1", facts)
    assert found == [("not-applicable", "the VM console was not readable")]
