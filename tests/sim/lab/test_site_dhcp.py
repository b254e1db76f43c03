"""A real lab: site DHCP (dnsmasq) leases an address to a real client, and the capture shows it."""

from __future__ import annotations

import pytest

from harness.capture.decode import decode_pcap
from harness.components.dhcp_client import obtain_lease
from harness.components.dnsmasq import SiteDhcp
from harness.lab import Lab

pytestmark = pytest.mark.sim


def test_client_gets_lease_and_capture_shows_dora(lab: Lab, site_dhcp: SiteDhcp) -> None:
    lease = obtain_lease(lab, "client", "lan")
    assert lease.server_id == site_dhcp.server_ip
    first, last = lab.dhcp_pool("lan")
    assert first <= lease.ip <= last or lease.ip in lab.subnets["lan"]
    client_mac = lab.link("client", "lan").mac
    assert {"mac": client_mac, "ip": lease.ip}.items() <= site_dhcp.leases()[0].items()

    pcap = lab.pcaps["lan"]
    lab.teardown()  # flushes the capture; the fixture's second teardown is a no-op
    events = [e for e in decode_pcap(str(pcap)).dhcp if e.chaddr == client_mac]
    assert [e.msg_type for e in events] == ["DISCOVER", "OFFER", "REQUEST", "ACK"]
    assert len({e.xid for e in events}) == 1
    discover, offer, request, ack = events
    assert discover.src_ip == "0.0.0.0" and discover.dport == 67
    assert offer.src_ip == site_dhcp.server_ip and offer.yiaddr == lease.ip
    assert offer.server_id == site_dhcp.server_ip
    assert request.requested_ip == lease.ip and request.server_id == site_dhcp.server_ip
    assert ack.yiaddr == lease.ip and ack.dport == 68
    # the site server is an ordinary DHCP server: no PXE boot information
    assert offer.vendor_class is None and offer.file == ""


def test_router_advertisement_is_sent_on_ra_segments(lab: Lab, site_dhcp: SiteDhcp) -> None:
    """iPXE waits ~16 s for an RA otherwise (MACHINE-NOTES.md); the client must see one."""
    out = lab.run("client", ["busybox", "timeout", "15", "sh", "-c",
                             "until ip -6 route show | grep -q '^fd'; do sleep 0.2; done; "
                             "ip -6 route show"])
    assert str(lab.subnets6["lan"].network_address) in out
