"""The rules on captures of real QEMU firmware (scripts/record-golden.py).

test_golden.py checks each golden capture against its sidecar's expectations;
this module states what must hold for real firmware whatever a sidecar says:
the proxy under test (dnsmasq, the reference, and flexlab's own Boot Proxy)
fails no MUST rule, and the
firmware's own traffic passes the client rules (CLI-*) — if a CLI rule fails
on real firmware, the rule is wrong, not the firmware. It also checks that
each capture holds the firmware its name claims, so a re-recording that
silently boots something else is noticed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.capture import decode_pcap
from harness.capture.events import Capture
from harness.rules import RuleContext, Verdict, check_capture
from harness.rules.model import Level, Report

pytestmark = pytest.mark.unit

PCAPS = Path(__file__).resolve().parents[3] / "fixtures" / "pcaps"

#: Each recorded firmware: the option 60 its first DISCOVER carries.
FIRMWARE_VENDOR_CLASS = {
    "seabios-ipxe": "PXEClient:Arch:00000:UNDI:002001",
    "ovmf-pxe": "PXEClient:Arch:00007:UNDI:003000",
    "ovmf-ipxe": "PXEClient:Arch:00007:UNDI:003010",
}
#: Client rules real firmware must pass (CLI-5 is about HTTP boot, absent here).
CLIENT_RULES = ("CLI-1", "CLI-2", "CLI-3", "CLI-4")
#: The proxies the firmware was recorded against: dnsmasq (the reference) and ours.
PROXIES = ("dnsmasq", "bootproxy")
GOLDEN = sorted(p for kind in PROXIES for p in PCAPS.glob(f"golden_*_{kind}.pcap"))


def _firmware(pcap: Path) -> str:
    return pcap.name.removeprefix("golden_").rsplit("_", 1)[0]


def _load(pcap: Path) -> tuple[Capture, Report, dict]:
    meta = json.loads(pcap.with_suffix(".json").read_text())
    cap = decode_pcap(str(pcap))
    ctx = RuleContext(
        proxies=frozenset(meta["proxy"]),
        serves={ip: frozenset(m.lower() for m in macs) for ip, macs in meta["serves"].items()},
        site_dhcp=frozenset(meta["site_dhcp"]),
    )
    return cap, check_capture(cap, ctx), meta


def test_every_recorded_firmware_has_a_capture() -> None:
    """All three firmware of record-golden.py are committed for dnsmasq (none skipped)."""
    dnsmasq = [p for p in GOLDEN if p.name.endswith("_dnsmasq.pcap")]
    assert sorted(_firmware(p) for p in dnsmasq) == sorted(FIRMWARE_VENDOR_CLASS)


@pytest.mark.parametrize("pcap", GOLDEN, ids=[p.name for p in GOLDEN])
def test_capture_holds_the_named_firmware(pcap: Path) -> None:
    cap, _, meta = _load(pcap)
    discovers = [e for e in cap.dhcp if e.op == 1 and e.msg_type == "DISCOVER"]
    assert discovers, "no DISCOVER in the capture"
    assert {e.chaddr for e in discovers} == {meta["mac"]}
    assert discovers[0].vendor_class == FIRMWARE_VENDOR_CLASS[_firmware(pcap)]
    # the exchange got as far as the proxy handing this firmware a boot file
    proxy = set(meta["proxy"])
    assert [e for e in cap.dhcp if e.op == 2 and e.src_ip in proxy and e.chaddr == meta["mac"]
            and e.file]


@pytest.mark.parametrize("pcap", GOLDEN, ids=[p.name for p in GOLDEN])
def test_proxy_side_has_no_must_failures(pcap: Path) -> None:
    cap, report, _ = _load(pcap)
    assert report.failures(Level.MUST) == [], [
        f"{f.rule_id} frames {f.frames}: {f.message}" for f in report.failures(Level.MUST)
    ]
    # and it is a real check: the proxy's OFFER (and 4011 answer, if asked) were judged
    asked_4011 = any(e.op == 1 and e.dport == 4011 for e in cap.dhcp)
    for rule_id in ("OFFER-1", "OFFER-2", "SILENT-5", *(["ACK4011-1"] if asked_4011 else [])):
        assert {f.verdict for f in report.for_rule(rule_id)} == {Verdict.PASS}, rule_id


@pytest.mark.parametrize("pcap", GOLDEN, ids=[p.name for p in GOLDEN])
@pytest.mark.parametrize("rule_id", CLIENT_RULES)
def test_real_firmware_passes_client_rules(pcap: Path, rule_id: str) -> None:
    _, report, _ = _load(pcap)
    findings = report.for_rule(rule_id)
    assert findings, f"{rule_id} was not evaluated"
    assert {f.verdict for f in findings} == {Verdict.PASS}, [
        f"{f.verdict.value} frames {f.frames}: {f.message}" for f in findings
    ]


@pytest.mark.parametrize("proxy", PROXIES)
def test_edk2_tftp_is_judged(proxy: str) -> None:
    """OVMF's own PXE stack fetched ipxe.efi by TFTP: the TFTP rules saw it and passed."""
    pcap = PCAPS / f"golden_ovmf-pxe_{proxy}.pcap"
    assert pcap.exists(), f"{pcap.name} not committed (scripts/record-golden.py --proxy {proxy})"
    cap, report, _ = _load(pcap)
    assert cap.tftp, "no TFTP packets kept in the capture"
    for rule_id in ("TFTP-1", "TFTP-2"):
        assert {f.verdict for f in report.for_rule(rule_id)} == {Verdict.PASS}, rule_id
