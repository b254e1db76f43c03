"""A real (small, asyncio) ProxyDHCP with one defect at a time, recorded with tcpdump.

Each defect must be flagged by exactly the rule it breaks; the same responder
without a defect must pass. The unit tier covers many more defects with
synthetic captures; this proves the chain decoder -> rules on real sockets.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.capture import decode_pcap
from harness.rules import RuleContext, check_capture

from .netlab import FOREIGN, SERVED, Segment, start_dnsmasq, start_tcpdump, wait_for_text

pytestmark = [pytest.mark.sim, pytest.mark.needs_root]

HERE = Path(__file__).parent


def _start(seg: Segment, tmp: Path, defect: str) -> None:
    start_dnsmasq(seg, "site", tmp, "--dhcp-range=10.77.0.50,10.77.0.99,255.255.255.0,1h",
                  "--no-ping")
    root = tmp / "tftp"
    root.mkdir()
    (root / "undionly.0").write_bytes(bytes(3000))
    start_dnsmasq(seg, "proxy", tmp, "--enable-tftp", f"--tftp-root={root}", ready="TFTP root")
    log = tmp / "proxy.log"
    p = seg.spawn(
        "proxy", [sys.executable, str(HERE / "bad_proxy.py"), "10.77.0.2", SERVED, defect], log
    )
    wait_for_text(log, "ready", p, 10)


@pytest.mark.parametrize(
    ("defect", "rule_id"),
    [
        ("none", None),
        ("yiaddr", "OFFER-2"),
        ("no60", "OFFER-3"),
        ("foreign", "SILENT-5"),
        ("ackport", "ACK4011-1"),
        # the REQUEST it ACKs names the site server in option 54: SILENT-3 as well
        ("ackreq", "SILENT-2 SILENT-3"),
        ("bad43", "OFFER-7"),
    ],
)
def test_defective_proxy(
    segment: Segment, tmp_path: Path, defect: str, rule_id: str | None
) -> None:
    _start(segment, tmp_path, defect)
    pcap = tmp_path / "seg.pcap"
    dump = start_tcpdump(segment, "client", pcap, "udp")
    py, client = sys.executable, str(HERE / "pxe_client.py")
    got = json.loads(segment.run("client", [py, client, SERVED, "0"]))
    segment.run("client", [py, client, FOREIGN, "0", "--discover-only"])
    segment.stop(dump)
    if defect == "none":
        assert got.get("tftp_bytes") == 3000, got
    ctx = RuleContext(proxies=frozenset({"10.77.0.2"}), serves={"10.77.0.2": frozenset({SERVED})})
    report = check_capture(decode_pcap(str(pcap)), ctx)
    expected = set(rule_id.split()) if rule_id else set()
    assert report.failed_rules() == expected, [
        f"{f.rule_id} {f.frames}: {f.message}" for f in report.failures()
    ]
