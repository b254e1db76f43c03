"""Who is a proxy: servers classified from the capture as CONFORMANCE.md's SITE preamble
says, on a real capture of the classic non-proxy PXE set-up and on synthetic ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.capture import decode_pcap
from harness.capture.synth import BROADCAST, Host, ip4
from harness.capture.synth_flows import BIOS, Flow, Spec, bios_flow
from harness.rules import Analysis, RuleContext, check_capture

pytestmark = pytest.mark.unit

PCAPS = Path(__file__).resolve().parents[3] / "fixtures" / "pcaps"
COMBINED = PCAPS / "real_dnsmasq-combined-pxe.pcap"


def test_a_combined_dhcp_and_pxe_server_is_not_judged_as_a_proxy() -> None:
    """Real dnsmasq handing out addresses with PXEClient, 43 and 4011 answers
    (scripts/record-combined-pxe.py): no proxy rule applies, SITE-2's exception holds."""
    server = json.loads(COMBINED.with_suffix(".json").read_text())["combined_server"]
    capture = decode_pcap(str(COMBINED))
    an = Analysis(capture, RuleContext())
    assert server not in an.proxies and server in an.address_servers
    report = check_capture(capture)
    assert report.failures() == [], [f"{f.rule_id}: {f.message}" for f in report.failures()]
    assert {f.verdict.value for f in report.for_rule("SITE-2")} == {"pass"}
    for rule in ("OFFER-2", "OFFER-10", "SILENT-2"):
        assert {f.verdict.value for f in report.for_rule(rule)} == {"not-applicable"}, rule


def test_a_server_named_as_proxy_is_judged_as_one_whatever_it_sends() -> None:
    server = json.loads(COMBINED.with_suffix(".json").read_text())["combined_server"]
    report = check_capture(decode_pcap(str(COMBINED)), RuleContext(proxies=frozenset({server})))
    assert {"OFFER-2", "SILENT-2"} <= report.failed_rules()


def test_a_server_making_proxy_offers_is_a_proxy_even_if_it_also_leases(tmp_path) -> None:
    """yiaddr 0 with PXEClient is a proxy offer: a server that also hands out addresses
    is still judged as the proxy it acts as."""
    f = Flow()
    bios_flow(f)
    p = f.site.proxy
    opts = [(53, b"\x02"), (54, ip4(p.ip)), (60, b"PXEClient")]
    f.emit("lease_too", Spec(
        p, BROADCAST, 67, 68, 2, 0x5151, "52:54:00:00:51:51", opts, {"yiaddr": "10.0.0.51"}))
    capture = decode_pcap(f.b.write(str(tmp_path / "both.pcap")))
    assert p.ip in Analysis(capture, RuleContext()).proxies


def test_offer10_says_how_a_wrong_destination_was_reached(judge) -> None:
    directed = judge(bios_flow, tweaks={"proxy_offer": lambda s: setattr(
        s, "dst", Host("ff:ff:ff:ff:ff:ff", "10.0.0.255"))})
    [finding] = directed.failures()
    assert finding.rule_id == "OFFER-10"
    assert "subnet-directed broadcast to 10.0.0.255" in finding.message
    unicast = judge(bios_flow, tweaks={"proxy_offer": lambda s: setattr(
        s, "dst", Host(BIOS.mac, BIOS.ip))})
    [finding] = unicast.failures()
    assert f"unicast to {BIOS.ip} ({BIOS.mac})" in finding.message
