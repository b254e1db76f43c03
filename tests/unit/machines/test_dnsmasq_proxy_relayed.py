"""dnsmasq in proxy mode answers relayed segments only with a proxy range for each of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.components.dnsmasq_proxy import DnsmasqProxyConfig

pytestmark = pytest.mark.unit


def _config(**kw: object) -> DnsmasqProxyConfig:
    return DnsmasqProxyConfig(interface="eth0", subnet="10.9.0.0/24", work_dir=Path("w"),
                              tftp_root=Path("t"), script_url="http://10.9.0.3:8080/x",
                              **kw)  # type: ignore[arg-type]


def test_each_relayed_subnet_gets_its_own_proxy_range() -> None:
    """A relayed request matches a range by giaddr; without one dnsmasq ignores it (SITE-3)."""
    argv = _config(relayed_subnets=("10.20.0.0/22", "10.30.1.0/24")).argv()
    ranges = [a for a in argv if a.startswith("--dhcp-range=")]
    assert ranges == ["--dhcp-range=10.9.0.0,proxy,255.255.255.0",
                      "--dhcp-range=10.20.0.0,proxy,255.255.252.0",
                      "--dhcp-range=10.30.1.0,proxy,255.255.255.0"]


def test_no_relayed_subnets_means_only_its_own_segment() -> None:
    assert [a for a in _config().argv() if a.startswith("--dhcp-range=")] == [
        "--dhcp-range=10.9.0.0,proxy,255.255.255.0"]
