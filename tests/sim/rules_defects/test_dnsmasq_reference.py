"""The rules against dnsmasq, the independent reference ProxyDHCP, on a real segment.

A site dnsmasq hands out addresses, a second dnsmasq runs in proxy mode with a
MAC filter, a minimal PXE ROM boots through both, and tcpdump records the
client's side. dnsmasq is what the rules were written from, so a MUST failure
here means a rule (or the decoder) is wrong, not the proxy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.capture import decode_pcap
from harness.rules import RuleContext, Verdict, check_capture

from .netlab import FOREIGN, SERVED, Segment, start_dnsmasq, start_tcpdump, wait_for_packets

pytestmark = [pytest.mark.sim, pytest.mark.needs_root]

CLIENT = str(Path(__file__).with_name("pxe_client.py"))


@pytest.mark.parametrize(
    ("arch", "extra"),
    [(0, []), (7, ["--from-4011"])],
    ids=["bios", "uefi-edk2-style"],
)
def test_dnsmasq_proxy_boot_is_conformant(
    segment: Segment, tmp_path: Path, arch: int, extra: list[str]
) -> None:
    tftp_root = tmp_path / "tftp"
    tftp_root.mkdir()
    for name in ("undionly.0", "ipxe.efi", "ipxe.efi.0", "ipxe"):
        (tftp_root / name).write_bytes(bytes(range(256)) * 12)  # 3072 bytes
    start_dnsmasq(
        segment,
        "site",
        tmp_path,
        "--dhcp-range=10.77.0.50,10.77.0.99,255.255.255.0,1h",
        "--no-ping",
    )
    start_dnsmasq(
        segment,
        "proxy",
        tmp_path,
        "--dhcp-range=10.77.0.0,proxy,255.255.255.0",
        f"--dhcp-host={SERVED},set:known",
        "--dhcp-ignore=tag:!known",
        "--pxe-service=x86PC,Boot iPXE,undionly",
        "--pxe-service=X86-64_EFI,Boot EFI,ipxe.efi",
        "--enable-tftp",
        f"--tftp-root={tftp_root}",
    )
    pcap = tmp_path / "segment.pcap"
    dump = start_tcpdump(segment, "client", pcap)

    py = sys.executable
    served = json.loads(segment.run("client", [py, CLIENT, SERVED, str(arch), *extra]))
    foreign = json.loads(segment.run("client", [py, CLIENT, FOREIGN, "0", "--discover-only"]))
    segment.stop(dump)

    assert served["proxy_offers"] == 1 and served["tftp_bytes"] == 3072, served
    assert foreign == {"mac": FOREIGN, "site_offers": 1, "proxy_offers": 0}
    ctx = RuleContext(
        proxies=frozenset({"10.77.0.2"}),
        serves={"10.77.0.2": frozenset({SERVED})},
        site_dhcp=frozenset({"10.77.0.1"}),
    )
    report = check_capture(decode_pcap(str(pcap)), ctx)
    must = [f"{f.rule_id} {f.frames}: {f.message}" for f in report.failures()]
    assert report.ok, must
    for rule_id in (
        "OFFER-2",
        "OFFER-3",
        "OFFER-6",
        "ACK4011-1",
        "SILENT-5",
        "TFTP-1",
        "TFTP-2",
        "SITE-1",
    ):
        assert {f.verdict for f in report.for_rule(rule_id)} == {Verdict.PASS}, rule_id
    if arch == 0:  # dnsmasq sends BIOS a menu, so the 4011 request carries 43.71
        assert {f.verdict for f in report.for_rule("ACK4011-4")} == {Verdict.PASS}


def test_dnsmasq_tftp_refusals_pass_tftp6(tmp_path: Path) -> None:
    """Real dnsmasq's TFTP refusals, on the wire, are what TFTP-6 asks for: ERROR 1 for a
    missing file (and for an absolute path, read under its root), 2 for `..`, 4 for a
    bad mode, a bad opcode or a write. TFTP-6 passes on each; nothing fails."""
    seg = Segment({"site": "10.77.0.1/24", "client": "10.77.0.9/24"}).start()
    try:
        root = tmp_path / "tftp"
        root.mkdir()
        (root / "present.kpxe").write_bytes(bytes(range(256)) * 3)
        start_dnsmasq(seg, "site", tmp_path, "--enable-tftp", f"--tftp-root={root}",
                 ready="TFTP root is")
        pcap = tmp_path / "segment.pcap"
        dump = start_tcpdump(seg, "client", pcap, "udp")
        probe = str(Path(__file__).with_name("tftp_probe.py"))
        got = json.loads(seg.run("client", [sys.executable, probe, "10.77.0.1"]))
        # 7 requests, 7 first answers, dnsmasq's resends of DATA 1 the probe never ACKs
        wait_for_packets(pcap, 14, dump, timeout=10)
        seg.stop(dump)
    finally:
        seg.close()
    assert got == {"missing": [5, 1], "dotdot": [5, 2], "absolute": [5, 1], "bad-mode": [5, 4],
                   "bad-opcode": [5, 4], "write": [5, 4], "present": [3, 1]}, got
    assert pcap.stat().st_size > 24, pcap.with_suffix(".tcpdump.log").read_text()
    report = check_capture(decode_pcap(str(pcap), require_dhcp=False),
                           RuleContext(site_dhcp=frozenset({"10.77.0.1"})))
    assert report.failures() == [], [f"{f.rule_id}: {f.message}" for f in report.failures()]
    [tftp6] = report.for_rule("TFTP-6")
    assert tftp6.verdict is Verdict.PASS and tftp6.message.startswith("6 errors checked"), tftp6
    assert {f.verdict for f in report.for_rule("TFTP-9")} == {Verdict.PASS}
