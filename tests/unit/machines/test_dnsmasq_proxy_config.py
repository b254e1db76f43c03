"""dnsmasq proxy-mode config renders the argv in the reference file, and filters MACs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.components.dnsmasq_proxy import (
    DnsmasqProxyConfig,
    PxeService,
    served_macs_from_control_plane,
)

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "dnsmasq"


def _config(**kw: object) -> DnsmasqProxyConfig:
    base: dict[str, object] = dict(
        interface="eth0",
        subnet="10.9.0.0/24",
        work_dir=Path("/tmp/flexlab-flab123/proxy"),
        tftp_root=Path("/tmp/flexlab-flab123/proxy/tftp"),
        script_url="http://10.9.0.1:8080/boot/${mac}.ipxe",
        served_macs=("52:54:00:AA:00:01", "52:54:00:aa:00:02"),
    )
    base.update(kw)
    return DnsmasqProxyConfig(**base)  # type: ignore[arg-type]


def test_proxy_argv_matches_reference() -> None:
    reference = FIXTURES / "test_proxy_argv_matches_reference.txt"
    assert _config().argv() == reference.read_text().split("\n")


def test_proxy_range_is_the_network_not_the_host_address() -> None:
    argv = _config(subnet="10.9.0.77/24").argv()
    assert "--dhcp-range=10.9.0.0,proxy,255.255.255.0" in argv
    assert not any(a.startswith("--dhcp-range=") and "proxy" not in a for a in argv)


def test_no_filter_answers_everyone_and_empty_filter_answers_no_one() -> None:
    open_argv = _config(served_macs=None).argv()
    assert "--dhcp-ignore=tag:!known" not in open_argv
    closed = _config(served_macs=()).argv()
    assert "--dhcp-ignore=tag:!known" in closed
    assert not any(a.startswith("--dhcp-host=") for a in closed)


def test_each_service_gets_binary_for_firmware_and_script_for_ipxe() -> None:
    argv = _config(services=(PxeService("x86PC", "undionly.kpxe"),)).argv()
    services = [a for a in argv if a.startswith("--pxe-service=")]
    assert services == [
        "--pxe-service=tag:!ipxe,x86PC,flexlab network boot,undionly.kpxe",
        "--pxe-service=tag:ipxe,x86PC,flexlab network boot,"
        "http://10.9.0.1:8080/boot/${mac}.ipxe",
    ]


def test_served_macs_come_from_the_control_plane_assignments() -> None:
    class FakeApi:  # answers as ControlPlaneClient.machines does: objects with .mac
        def machines(self, cluster: str) -> list[SimpleNamespace]:
            return {"a": [SimpleNamespace(mac="52:54:00:AA:00:02"),
                          SimpleNamespace(mac="52:54:00:aa:00:01")],
                    "b": [SimpleNamespace(mac="52:54:00:aa:00:03")]}[cluster]

    macs = served_macs_from_control_plane(FakeApi(), ["a"])  # type: ignore[arg-type]
    assert macs == ("52:54:00:aa:00:01", "52:54:00:aa:00:02")
    assert "--dhcp-host=52:54:00:aa:00:03,set:known" not in _config(served_macs=macs).argv()
