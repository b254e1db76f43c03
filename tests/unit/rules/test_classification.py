"""Who is a proxy: servers classified from the capture as CONFORMANCE.md's SITE preamble
says, on a real capture of the classic non-proxy PXE set-up and on synthetic ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from failing import shows_failing

from harness.capture import decode_pcap
from harness.capture.synth import BROADCAST, Host, ip4
from harness.capture.synth_flows import BIOS, Flow, Spec, bios_flow
from harness.check_pcap import run
from harness.rules import RULES, Analysis, RuleContext, check_capture

pytestmark = pytest.mark.unit

PCAPS = Path(__file__).resolve().parents[3] / "fixtures" / "pcaps"
COMBINED = PCAPS / "real_dnsmasq-combined-pxe.pcap"
SIDECAR = json.loads(COMBINED.with_suffix(".json").read_text())
PROXY_RULES = [r for r in RULES if r.split("-")[0] in ("OFFER", "RELAY", "SILENT", "IPXE")]


def test_the_combined_capture_is_what_it_claims() -> None:
    """The fixture is the classic set-up and nothing else: every client booted, one
    server both leased addresses and answered on 4011, and nobody made a proxy offer."""
    assert set(SIDECAR["client_states"].values()) == {"done"}
    capture = decode_pcap(str(COMBINED))
    server = SIDECAR["combined_server"]
    offers = [e for e in capture.dhcp if e.msg_type == "OFFER"]
    assert offers and all(o.yiaddr != "0.0.0.0" and o.src_ip == server for o in offers)
    assert all((o.vendor_class or "").startswith("PXEClient") for o in offers)
    assert any(e.sport == 4011 and e.src_ip == server for e in capture.dhcp)
    assert any(o.bootfile_opt or o.file for o in offers)  # the UEFI client's shape


def test_check_pcap_judges_a_combined_dhcp_and_pxe_server_as_no_proxy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Real dnsmasq handing out addresses with PXEClient, 43, a boot file and 4011
    answers (scripts/record-combined-pxe.py), checked as a user would, without
    --site-dhcp: no proxy rule applies, SITE-2's exception holds, exit 0."""
    scale = str(SIDECAR["time_scale"])
    assert run([str(COMBINED), "--json", "--time-scale", scale]) == 0
    doc = json.loads(capsys.readouterr().out)
    server = SIDECAR["combined_server"]
    assert doc["servers"] == {"proxies": [], "address_servers": [server],
                              "combined_servers": [server]}
    verdicts: dict[str, set[str]] = {}
    for f in doc["findings"]:
        verdicts.setdefault(f["rule_id"], set()).add(f["verdict"])
    assert not [r for r, v in verdicts.items() if "fail" in v], doc["summary"]
    assert verdicts["SITE-2"] == {"pass"}
    for rule in PROXY_RULES:
        assert verdicts[rule] == {"not-applicable"}, rule
    # the boot-server half is still judged: its 4011 answer and the TFTP reads
    for rule in ("ACK4011-1", "ACK4011-2", "TFTP-1", "TFTP-2", "SITE-3"):
        assert verdicts[rule] == {"pass"}, rule
    assert run([str(COMBINED), "--time-scale", scale]) == 0
    assert f"combined DHCP+PXE servers {server}" in capsys.readouterr().out


def test_a_server_named_as_proxy_is_judged_as_one_whatever_it_sends() -> None:
    server = SIDECAR["combined_server"]
    report = check_capture(decode_pcap(str(COMBINED)), RuleContext(proxies=frozenset({server})))
    assert {"OFFER-2", "SILENT-2"} <= report.failed_rules()
    assert report.servers["proxies"] == [server] and report.servers["combined_servers"] == []


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


@shows_failing("OFFER-10")
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
