"""Two labs at once on one host never see each other's traffic."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.capture.decode import decode_pcap
from harness.components.dhcp_client import obtain_lease
from harness.components.dnsmasq import SiteDhcp
from harness.lab import Lab
from harness.pytest_plugin import DEFAULT_TOPOLOGY

pytestmark = pytest.mark.sim


def test_two_labs_side_by_side_are_isolated(tmp_path: Path) -> None:
    with Lab(DEFAULT_TOPOLOGY, reports_dir=tmp_path) as a, \
            Lab(DEFAULT_TOPOLOGY, reports_dir=tmp_path) as b, \
            SiteDhcp(a, "dhcp", "lan") as dhcp_a, SiteDhcp(b, "dhcp", "lan") as dhcp_b:
        assert a.id != b.id
        assert not a.subnets["lan"].overlaps(b.subnets["lan"])
        lease_a = obtain_lease(a, "client", "lan")
        lease_b = obtain_lease(b, "client", "lan")
        assert lease_a.server_id == dhcp_a.server_ip
        assert lease_b.server_id == dhcp_b.server_ip
        macs = {a.id: {a.link(h, "lan").mac for h in ("dhcp", "client")},
                b.id: {b.link(h, "lan").mac for h in ("dhcp", "client")}}
    for lab, other in ((a, b), (b, a)):
        events = decode_pcap(str(lab.pcaps["lan"])).dhcp
        assert events, f"lab {lab.id} captured no DHCP"
        seen = {e.src_mac for e in events} | {e.chaddr for e in events}
        assert not seen & macs[other.id], f"lab {lab.id} saw lab {other.id}'s frames"
        assert {e.src_ip for e in events} <= {"0.0.0.0", *(str(h) for h in lab.subnets["lan"])}
