"""The lab DNS servers' configs render what BIND and dnsmasq need (no daemon started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.components.dns_server import BindConfig, DnsmasqDnsConfig

pytestmark = pytest.mark.unit


def test_bind_config_allows_updates_only_in_the_update_zone(tmp_path: Path) -> None:
    cfg = BindConfig(directory=tmp_path, listen="10.1.0.3",
                     records={"pypi.org": "10.1.0.9", "archive.ubuntu.com.": "10.1.0.9"})
    conf = cfg.named_conf()
    assert "listen-on port 53 { 10.1.0.3; };" in conf and "recursion no;" in conf
    assert 'zone "." { type primary;' in conf
    assert 'zone "site.test" { type primary;' in conf and "allow-update { any; }" in conf
    assert "controls { };" in conf, "no rndc channel: nothing to secure in a lab"
    root = cfg.root_zone().splitlines()
    assert "pypi.org. IN A 10.1.0.9" in root and "archive.ubuntu.com. IN A 10.1.0.9" in root
    assert cfg.argv() == ["named", "-g", "-n", "1", "-c", str(tmp_path / "named.conf")]
    cfg.write()
    assert (tmp_path / "update.zone").read_text().startswith("$ORIGIN site.test.\n")


def test_bind_config_refusing_updates(tmp_path: Path) -> None:
    conf = BindConfig(directory=tmp_path, listen="10.1.0.3", allow_update=False).named_conf()
    assert "allow-update { none; }" in conf
    assert "allow-update" not in BindConfig(directory=tmp_path, listen="10.1.0.3",
                                            update_zone=None).named_conf()


def test_dnsmasq_dns_argv(tmp_path: Path) -> None:
    argv = DnsmasqDnsConfig(listen="10.1.0.4", pid_file=tmp_path / "d.pid",
                            records={"pypi.org.": "10.1.0.9"}).argv()
    assert "--port=53" in argv and "--listen-address=10.1.0.4" in argv
    assert "--host-record=pypi.org,10.1.0.9" in argv and "--no-resolv" in argv
    assert not any(a.startswith("--dhcp") for a in argv)


def test_bind_config_with_tsig_accepts_only_signed_updates(tmp_path: Path) -> None:
    conf = BindConfig(directory=tmp_path, listen="10.1.0.3",
                      tsig_key=("flexlab-key", "c2VjcmV0c2VjcmV0")).named_conf()
    assert 'key "flexlab-key" { algorithm hmac-sha256; secret "c2VjcmV0c2VjcmV0"; };' in conf
    assert 'allow-update { key "flexlab-key"; }' in conf
