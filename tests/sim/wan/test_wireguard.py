"""The private WAN: a real WireGuard tunnel (kernel module where it exists, else
wireguard-go) carries site↔Control Plane traffic; on the WAN link only UDP is seen."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.lab import capabilities as cap
from harness.lab.registry import Registry, process_alive
from harness.wan import WanRouterConfig
from harness.wan.probes import http_get, tcp_connect

from .conftest import WanSite
from .wire import TCP, UDP, frame_count, frames_after

pytestmark = pytest.mark.sim


def test_private_wan_carries_site_traffic_inside_wireguard(
        wan_site: Callable[[WanRouterConfig], WanSite]) -> None:
    config = WanRouterConfig(private=True)
    site = wan_site(config)
    router_tunnel, cloud_tunnel = (str(a.ip) for a in config.tunnel_addresses())
    assert site.cloud == cloud_tunnel

    expected = "kernel" if cap.detect()[cap.WIREGUARD_KERNEL].available else "userspace"
    assert site.router.backend == expected
    assert f"event=tunnel backend={expected}" in site.router.logs()
    if expected == "userspace":  # wireguard-go PIDs are in the registry: clean finds them
        record = Registry().load(site.lab.id)
        assert record is not None
        wg = [p for p in record.processes if "-wg-" in p.name]
        assert len(wg) == 2 and all(process_alive(p) for p in wg), record.processes

    pcap = site.lab.pcaps["wan"]
    start = frame_count(pcap)
    assert "port 443" in site.site.call(http_get, f"http://{site.cloud}:443/")
    assert "port 8888" in site.site.call(http_get, f"http://{site.cloud}:8888/")
    assert not site.site.call(tcp_connect, site.cloud, 22, 1.0).connected

    seen = {line.split()[0] for line in site.web.logs().splitlines() if " port " in line}
    assert seen == {router_tunnel}, site.web.logs()
    wire = frames_after(pcap, start, until=12)
    assert [f for f in wire if f.protocol == TCP] == [], "TCP on the WAN: not tunnelled"
    cloud_wan = site.lab.address("cloud", config.wan_segment)
    off_tunnel = [f for f in wire if f.protocol != UDP or config.wg_port not in (f.sport, f.dport)
                  or {f.src, f.dst} != {site.router_wan, cloud_wan}]
    assert off_tunnel == [], "only WireGuard UDP between router and cloud may cross the WAN"

    flows = site.router.observed_flows()
    accepted = {f.dport for f in flows if f.verdict == "accepted"}
    assert accepted == {443, 8888}
    assert {f.path for f in flows} == {"tunnel"}
    assert [(f.dport, f.verdict) for f in flows if f.verdict == "dropped"] == [(22, "dropped")]


def test_tunnel_down_fails_fast_and_up_restores(
        wan_site: Callable[[WanRouterConfig], WanSite]) -> None:
    site = wan_site(WanRouterConfig(private=True))
    assert site.site.call(tcp_connect, site.cloud, 443, 3.0).connected
    site.router.down()
    cut = site.site.call(tcp_connect, site.cloud, 443, 5.0)
    assert not cut.connected and cut.error in ("ENETUNREACH", "EHOSTUNREACH"), cut
    assert cut.elapsed_s < 1.0, cut
    site.router.up()
    assert "port 443" in site.site.call(http_get, f"http://{site.cloud}:443/")
