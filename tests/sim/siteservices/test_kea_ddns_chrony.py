"""Kea as the site DHCP with DDNS into BIND (TSIG-signed RFC 2136), chrony as the time
source: the site services a whole-site scenario runs, each a real Debian daemon."""

from __future__ import annotations

import sys

import dns.rdatatype
import dns.reversename
import pytest

from harness.components.chrony import ChronyNtp
from harness.components.dhcp_client import obtain_lease
from harness.components.dns_server import BindDns
from harness.components.kea import KeaSiteDhcp, reverse_zone
from harness.lab import Host, HostLink, Segment, Topology
from harness.lab.nsthread import NamespaceWorker
from harness.site_build import lookup, new_tsig_key
from harness.wait import wait_until

pytestmark = [pytest.mark.sim, pytest.mark.timeout(90)]

TOPOLOGY = Topology(segments=(Segment("lan", ipv6_ra=False),),
                    hosts=(Host("svc", (HostLink("lan"),)),
                           Host("node", (HostLink("lan", address=None),)),
                           Host("client", (HostLink("lan"),))))
# one NTP client exchange (mode 3), run in the client's namespace: prints stratum, offset
NTP_QUERY = (
    "import socket,struct,sys,time;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
    "s.settimeout(2);s.sendto(b'\\x23'+47*b'\\0',(sys.argv[1],123));d,_=s.recvfrom(512);"
    "t=time.time();a,b=struct.unpack('!II',d[40:48]);print(d[1],a-2208988800+b/2**32-t)")


def _key() -> tuple[str, str]:
    return new_tsig_key("flexlab-ddns")


@pytest.fixture
def resolve(make_lab):
    """Queries made from the lab's client host (its sockets live in the lab's namespace)."""
    workers: list[NamespaceWorker] = []

    def make(lab):
        worker = NamespaceWorker(lab.ns("client"))
        workers.append(worker)
        return lambda server, name, rdtype: worker.call(lookup, server, name, rdtype)

    yield make
    for worker in workers:
        worker.close()


def _services(lab, key, *, bind_key=None):
    svc = lab.address("svc", "lan")
    zone = reverse_zone(str(lab.subnets["lan"]))
    bind = BindDns(lab, "svc", "lan", {}, update_zone="site.test", tsig_key=bind_key or key,
                   reverse_zones=(zone,))
    ntp = ChronyNtp(lab, "svc", "lan")
    node_mac = lab.link("node", "lan").mac
    kea = KeaSiteDhcp(lab, "svc", "lan", hostnames={node_mac: "worker7"}, dns_server=svc,
                      ntp_servers=(svc,), tsig_key=key)
    return svc, zone, bind, ntp, kea


def test_kea_lease_places_the_reserved_name_in_dns_forward_and_reverse(make_lab, resolve) -> None:
    lab = make_lab(TOPOLOGY)
    _query = resolve(lab)
    key = _key()
    svc, _zone, bind, ntp, kea = _services(lab, key)
    with bind, ntp, kea:
        lease = obtain_lease(lab, "node", "lan")
        assert lease.server_id == svc
        wait_until(lambda: _query(svc, "worker7.site.test.", "A") == (lease.ip,), timeout=10,
                   what="worker7.site.test A record", evidence=kea.logs)
        ptr = dns.reversename.from_address(lease.ip).to_text()
        wait_until(lambda: _query(svc, ptr, "PTR") == ("worker7.site.test.",), timeout=10,
                   what="PTR record", evidence=kea.logs)
        assert any(o["outcome"] == "ok" for o in kea.ddns_outcomes())
        assert not [o for o in kea.ddns_outcomes() if o["outcome"] == "failed"]
        assert any(row["hostname"].startswith("worker7") for row in kea.leases())


def test_a_refused_update_is_reported_not_dropped(make_lab, resolve) -> None:
    lab = make_lab(TOPOLOGY)
    _query = resolve(lab)
    # BIND trusts another key: every update Kea signs is refused (NOTAUTH/REFUSED)
    svc, _zone, bind, ntp, kea = _services(lab, _key(), bind_key=_key())
    with bind, ntp, kea:
        obtain_lease(lab, "node", "lan")
        wait_until(lambda: any(o["outcome"] == "failed" for o in kea.ddns_outcomes()),
                   timeout=15, what="D2 to report the refused update", evidence=kea.logs)
        assert _query(svc, "worker7.site.test.", "A") == ()


def test_chrony_serves_the_host_clock_within_a_second(make_lab) -> None:
    lab = make_lab(TOPOLOGY)
    ntp = ChronyNtp(lab, "svc", "lan")
    with ntp:
        # query from the lab host's namespace: the lab's traffic stays in the lab
        out = lab.run("client", [sys.executable, "-c", NTP_QUERY, ntp.address])
        stratum, offset = out.split()
        assert 1 <= int(stratum) <= 15, out
        assert abs(float(offset)) < 1.0, out


DUPLICATE = Topology(segments=(Segment("lan", ipv6_ra=False),),
                     hosts=(Host("svc", (HostLink("lan"),)),
                            Host("node", (HostLink("lan", address=None),)),
                            Host("twin", (HostLink("lan", address=None),)),
                            Host("client", (HostLink("lan"),))))


def test_a_duplicate_hostname_is_refused_with_the_reason(make_lab, resolve) -> None:
    lab = make_lab(DUPLICATE)
    _query = resolve(lab)
    key = _key()
    svc = lab.address("svc", "lan")
    names = {lab.link("node", "lan").mac: "worker7", lab.link("twin", "lan").mac: "worker7"}
    bind = BindDns(lab, "svc", "lan", {}, update_zone="site.test", tsig_key=key)
    kea = KeaSiteDhcp(lab, "svc", "lan", hostnames=names, dns_server=svc, tsig_key=key,
                      reverse=False)
    with bind, kea:
        first = obtain_lease(lab, "node", "lan")
        wait_until(lambda: _query(svc, "worker7.site.test.", "A") == (first.ip,), timeout=10,
                   what="the first worker7", evidence=kea.logs)
        obtain_lease(lab, "twin", "lan")
        wait_until(lambda: any(o["outcome"] == "failed" for o in kea.ddns_outcomes()),
                   timeout=15, what="D2 to refuse the second worker7", evidence=kea.logs)
        # the name still points at its first owner: the duplicate did not take it over
        assert _query(svc, "worker7.site.test.", "A") == (first.ip,)
