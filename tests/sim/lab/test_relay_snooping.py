"""Site shapes the scenarios need: a DHCP relay between segments, a snooping switch, netem."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from harness.components.bootproxy import BootProxy
from harness.components.dhcp_client import obtain_lease
from harness.components.dnsmasq import SiteDhcp
from harness.components.relay import DhcpRelay
from harness.components.snooping import dropped_replies, enable_snooping
from harness.errors import DependencyError, LabError
from harness.lab import Host, HostLink, Lab, Segment, Topology

from .pxe_probe import pxe_discover

pytestmark = pytest.mark.sim

RELAYED = Topology(
    segments=(Segment("lan"), Segment("core")),
    hosts=(
        Host("dhcp", (HostLink("core"),)),
        Host("bp1", (HostLink("core"),)),
        Host("relay", (HostLink("lan"), HostLink("core")), forwarding=True),
        Host("client", (HostLink("lan", address=None),)),
    ),
)
FLAT = Topology(
    segments=(Segment("lan"),),
    hosts=(Host("dhcp", (HostLink("lan"),)), Host("bp1", (HostLink("lan"),)),
           Host("client", (HostLink("lan", address=None),))),
)


def serve(lab: Lab, *hosts: str) -> Path:
    path = lab.temp_dir / "assignments.json"
    path.write_text(json.dumps({"revision": 1, "assignments": [
        {"mac": lab.link(h, "lan").mac, "cluster": "alpha", "hostname": h, "role": "worker",
         "profile": "default"} for h in hosts]}))
    return path


def test_relayed_client_is_answered_via_giaddr(make_lab) -> None:
    lab = make_lab(RELAYED)
    for server in ("dhcp", "bp1"):
        lab.add_route(server, str(lab.subnets["lan"]), lab.address("relay", "core"))
    servers = [lab.address("dhcp", "core"), lab.address("bp1", "core")]
    with SiteDhcp(lab, "dhcp", "core", relayed_segments=("lan",)) as dhcp, \
            BootProxy(lab, "bp1", ["core"], assignments_file=serve(lab, "client")), \
            DhcpRelay(lab, "relay", "lan", "core", servers) as relay:
        replies = pxe_discover(lab, "client", "lan")
        lease = obtain_lease(lab, "client", "lan")
    assert lease.ip in [str(h) for h in lab.subnets["lan"].hosts()]
    assert lease.server_id == dhcp.server_ip
    proxy = [r for r in replies if r["vendor_class"] == b"PXEClient"]
    assert len(proxy) == 1, replies
    assert proxy[0]["yiaddr"] == "0.0.0.0"
    assert proxy[0]["giaddr"] == relay.giaddr
    assert proxy[0]["server_id"] == lab.address("bp1", "core")


def test_snooping_switch_drops_untrusted_proxy_replies(make_lab) -> None:
    lab = make_lab(FLAT)
    with SiteDhcp(lab, "dhcp", "lan"), BootProxy(lab, "bp1", ["lan"],
                                                  assignments_file=serve(lab, "client")):
        before = pxe_discover(lab, "client", "lan")
        enable_snooping(lab, "lan", trusted_hosts=["dhcp"])
        after = pxe_discover(lab, "client", "lan")
        dropped = dropped_replies(lab, "lan")
    assert sorted(r["yiaddr"] == "0.0.0.0" for r in before) == [False, True]
    assert [r["yiaddr"] == "0.0.0.0" for r in after] == [False], after
    assert dropped >= 1


def test_loss_drops_frames_to_a_host(make_lab) -> None:
    lab = make_lab(FLAT)
    with SiteDhcp(lab, "dhcp", "lan"):
        lab.impair("client", "lan", loss_pct=100)
        with pytest.raises(LabError, match=r"printed no lease|failed"):
            obtain_lease(lab, "client", "lan", tries=2)
        lab.impair("client", "lan")
        assert obtain_lease(lab, "client", "lan").ip


def test_latency_without_netem_is_a_clear_error(make_lab) -> None:
    lab = make_lab(FLAT)
    try:
        lab.impair("client", "lan", delay_ms=300)
    except DependencyError as exc:
        assert "netem" in str(exc)
        return
    with SiteDhcp(lab, "dhcp", "lan"):  # this kernel has netem: the delay must show
        started = time.monotonic()
        obtain_lease(lab, "client", "lan")
        assert time.monotonic() - started > 0.6
