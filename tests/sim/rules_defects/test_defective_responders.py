"""A real (small, asyncio) ProxyDHCP with one defect at a time, recorded with tcpdump.

Each defect must be flagged by exactly the rule it breaks; the same responder
without a defect must pass. The unit tier covers many more defects with
synthetic captures; this proves the chain decoder -> rules on real sockets.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.capture import decode_pcap
from harness.rules import RuleContext, check_capture

from .netlab import Segment, wait_for_text

pytestmark = [pytest.mark.sim, pytest.mark.needs_root]

SERVED = "52:54:00:12:34:56"
FOREIGN = "52:54:00:65:43:21"
HERE = Path(__file__).parent


@pytest.fixture
def segment(tmp_path: Path) -> Iterator[Segment]:
    """site (10.77.0.1, dnsmasq), proxy (10.77.0.2, bad_proxy + dnsmasq TFTP), client."""
    seg = Segment({"site": "10.77.0.1/24", "proxy": "10.77.0.2/24", "client": ""}).start()
    try:
        seg.run("client", ["ip", "link", "set", "eth0", "address", SERVED])
        yield seg
    finally:
        seg.close()


def _start(seg: Segment, tmp: Path, defect: str) -> None:
    common = [
        "dnsmasq",
        "-k",
        "--conf-file=/dev/null",
        "--log-facility=-",
        "--port=0",
        "--interface=eth0",
        "--bind-interfaces",
        "--user=root",
    ]
    log = tmp / "site.log"
    p = seg.spawn(
        "site",
        [
            *common,
            "--dhcp-range=10.77.0.50,10.77.0.99,255.255.255.0,1h",
            "--no-ping",
            f"--dhcp-leasefile={tmp / 'leases'}",
            f"--pid-file={tmp / 'site.pid'}",
        ],
        log,
    )
    wait_for_text(log, "DHCP, ", p, 10)
    root = tmp / "tftp"
    root.mkdir()
    (root / "undionly.0").write_bytes(bytes(3000))
    log = tmp / "tftp.log"
    p = seg.spawn(
        "proxy",
        [*common, "--enable-tftp", f"--tftp-root={root}", f"--pid-file={tmp / 'tftp.pid'}"],
        log,
    )
    wait_for_text(log, "TFTP root", p, 10)
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
    pcap, tlog = tmp_path / "seg.pcap", tmp_path / "tcpdump.log"
    dump = segment.spawn(
        "client", ["tcpdump", "-i", "eth0", "-U", "-n", "-w", str(pcap), "udp"], tlog
    )
    wait_for_text(tlog, "listening on", dump, 10)
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
