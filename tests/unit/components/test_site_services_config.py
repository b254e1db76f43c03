"""Kea, D2, BIND reverse zones and chrony render what a careful site would configure."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.components.chrony import ChronyConfig
from harness.components.dns_server import BindConfig
from harness.components.kea import (
    D2_PORT,
    KeaDdnsConfig,
    KeaDhcp4Config,
    KeaSubnet,
    kea_argv,
    reverse_zone,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("subnet", "zone"), [
    ("10.0.0.0/24", "0.0.10.in-addr.arpa."),
    ("10.1.2.0/25", "2.1.10.in-addr.arpa."),
    ("10.1.16.0/20", "1.10.in-addr.arpa."),
    ("10.0.0.0/8", "10.in-addr.arpa."),
])
def test_reverse_zone_holds_every_address_of_the_subnet(subnet: str, zone: str) -> None:
    assert reverse_zone(subnet) == zone


def _dhcp(**kw: object) -> dict:
    cfg = KeaDhcp4Config(
        interface="eth0", lease_file=Path("leases.csv"),
        subnets=(KeaSubnet("10.0.0.0/24", ("10.0.0.100", "10.0.0.200"),
                           reservations={"52:54:00:00:00:01": (None, "worker1")}),
                 KeaSubnet("10.0.1.0/24", ("10.0.1.100", "10.0.1.200"), router="10.0.1.1",
                           relay=("10.0.1.1",))),
        dns_servers=("10.0.0.2",), ntp_servers=("10.0.0.3",), **kw)  # type: ignore[arg-type]
    return cfg.render()["Dhcp4"]


def test_kea_serves_own_and_relayed_subnets_with_named_reservations() -> None:
    doc = _dhcp()
    own, relayed = doc["subnet4"]
    assert own["pools"] == [{"pool": "10.0.0.100 - 10.0.0.200"}]
    assert own["reservations"] == [{"hw-address": "52:54:00:00:00:01", "hostname": "worker1"}]
    assert "relay" not in own
    assert relayed["relay"] == {"ip-addresses": ["10.0.1.1"]}
    assert relayed["option-data"] == [{"name": "routers", "data": "10.0.1.1"}]
    assert {o["name"]: o["data"] for o in doc["option-data"]} == {
        "domain-name": "site.test", "domain-name-servers": "10.0.0.2",
        "ntp-servers": "10.0.0.3"}
    assert next(o for o in doc["option-data"] if o["name"] == "ntp-servers")["always-send"]


def test_kea_sends_no_boot_data_unless_told_to_misbehave() -> None:
    doc = _dhcp()
    text = str(doc)
    assert "PXEClient" not in text and "boot-file-name" not in text
    bad = _dhcp(force_options={60: "PXEClient"})
    forced = [o for o in bad["option-data"] if o.get("code") == 60]
    assert forced == [{"code": 60, "data": "PXEClient", "always-send": True}]


def test_kea_ddns_names_every_lease_and_d2_signs_updates() -> None:
    doc = _dhcp()
    assert doc["dhcp-ddns"]["enable-updates"] is True
    assert doc["dhcp-ddns"]["server-port"] == D2_PORT
    assert doc["ddns-qualifying-suffix"] == "site.test."
    assert doc["ddns-replace-client-name"] == "when-not-present"
    assert "dhcp-ddns" not in _dhcp(ddns=False)
    d2 = KeaDdnsConfig("10.0.0.2", "site.test", ("0.0.10.in-addr.arpa.",),
                       ("k1", "c2VjcmV0")).render()["DhcpDdns"]
    assert d2["tsig-keys"] == [{"name": "k1", "algorithm": "HMAC-SHA256", "secret": "c2VjcmV0"}]
    fwd = d2["forward-ddns"]["ddns-domains"][0]
    assert fwd == {"name": "site.test.", "key-name": "k1",
                   "dns-servers": [{"ip-address": "10.0.0.2", "port": 53}]}
    assert d2["reverse-ddns"]["ddns-domains"][0]["name"] == "0.0.10.in-addr.arpa."
    unsigned = KeaDdnsConfig("10.0.0.2", "site.test").render()["DhcpDdns"]
    assert "tsig-keys" not in unsigned and "key-name" not in str(unsigned)


def test_kea_state_stays_in_the_lab_directory() -> None:
    argv = kea_argv("/usr/sbin/kea-dhcp4", Path("/x/kea.json"), Path("/x"))
    assert argv[:3] == ["env", "KEA_PIDFILE_DIR=/x", "KEA_LOCKFILE_DIR=/x"]
    assert argv[3:] == ["/usr/sbin/kea-dhcp4", "-c", "/x/kea.json"]


def test_bind_reverse_zones_take_signed_updates_only(tmp_path: Path) -> None:
    cfg = BindConfig(tmp_path, "10.0.0.2", tsig_key=("k1", "c2VjcmV0"),
                     reverse_zones=("0.0.10.in-addr.arpa.",))
    conf = cfg.named_conf()
    assert ('zone "0.0.10.in-addr.arpa" { type primary; file "'
            f'{tmp_path}/0.0.10.in-addr.arpa.zone"; allow-update {{ key "k1"; }}; }};') in conf
    cfg.write()
    zone = (tmp_path / "0.0.10.in-addr.arpa.zone").read_text()
    assert "IN SOA ns.site.test." in zone and "IN NS ns.site.test." in zone


def test_chrony_never_steps_the_host_clock_and_opens_no_command_port(tmp_path: Path) -> None:
    cfg = ChronyConfig(tmp_path, "10.0.0.3")
    assert "-x" in cfg.argv() and "-d" in cfg.argv()
    conf = cfg.conf()
    assert "cmdport 0" in conf and "bindaddress 10.0.0.3" in conf
    assert "local stratum" in conf and "server " not in conf
