"""dnsmasq's command line is rendered from a typed config and checked against a reference."""

import dataclasses
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


def test_a_pool_past_dnsmasqs_default_1000_leases_raises_the_lease_limit():
    """dnsmasq serves at most 1,000 leases unless told: a /17 pool for 5,000 machines
    must say so, or machine 1,001 on gets no address (the 5,000-machine storm)."""
    big = DnsmasqConfig(interface="eth0", lease_file=Path("/x.leases"),
                        ranges=(DhcpRange("10.9.0.1", "10.9.127.254", "255.255.128.0"),))
    assert "--dhcp-lease-max=32766" in big.argv()
    small = DnsmasqConfig(interface="eth0", lease_file=Path("/x.leases"),
                          ranges=(DhcpRange("10.9.0.128", "10.9.0.254", "255.255.255.0"),))
    assert not any(a.startswith("--dhcp-lease-max") for a in small.argv())
    exactly = DnsmasqConfig(interface="eth0", lease_file=Path("/x.leases"),
                            ranges=(DhcpRange("10.9.0.1", "10.9.3.232", "255.255.252.0"),))
    assert exactly.ranges[0].size() == 1000
    assert not any(a.startswith("--dhcp-lease-max") for a in exactly.argv())


def test_an_explicit_lease_max_is_passed_once_and_a_second_one_is_refused():
    """dnsmasq exits on a repeated --dhcp-lease-max ("illegal repeated flag"): a caller
    sets lease_max, and one that also passes the flag itself gets a clear error."""
    cfg = DnsmasqConfig(interface="eth0", lease_file=Path("/x.leases"), lease_max=4000,
                        ranges=(DhcpRange("10.9.0.1", "10.9.127.254", "255.255.128.0"),))
    assert [a for a in cfg.argv() if a.startswith("--dhcp-lease-max")] == [
        "--dhcp-lease-max=4000"]
    both = dataclasses.replace(cfg, extra_args=("--dhcp-lease-max=10",))
    with pytest.raises(ValueError, match="set lease_max instead"):
        both.argv()


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
