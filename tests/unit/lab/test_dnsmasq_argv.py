"""dnsmasq's command line is rendered from a typed config and checked against a reference."""

from pathlib import Path

import pytest

from harness.components.dnsmasq import DhcpRange, DnsmasqConfig

pytestmark = pytest.mark.unit
FIXTURES = Path(__file__).parents[3] / "fixtures" / "dnsmasq"


def test_site_dhcp_argv_matches_reference():
    cfg = DnsmasqConfig(
        interface="eth0",
        lease_file=Path("/tmp/flexlab-flab123/site.leases"),
        ranges=(DhcpRange("10.9.0.128", "10.9.0.254", "255.255.255.0"),),
    )
    expected = (FIXTURES / "test_site_dhcp_argv_matches_reference.txt").read_text().split()
    assert cfg.argv() == expected


def test_site_dhcp_never_sends_boot_information_by_default():
    cfg = DnsmasqConfig(interface="eth0", lease_file=Path("/x.leases"))
    argv = " ".join(cfg.argv())
    for boot_option in ("dhcp-boot", "pxe-service", "enable-tftp", "60,PXEClient", "proxy"):
        assert boot_option not in argv


def test_traps_can_be_turned_off_and_misconfiguration_modelled():
    cfg = DnsmasqConfig(interface="eth1", lease_file=Path("/x.leases"), ipv6_ra=False,
                        no_ping=False, router="10.9.0.1", force_options=("60,PXEClient",))
    argv = cfg.argv()
    assert "--no-ping" not in argv
    assert "--enable-ra" not in argv
    assert "--dhcp-option=option:router,10.9.0.1" in argv
    assert "--dhcp-option-force=60,PXEClient" in argv
