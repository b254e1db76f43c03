"""The Control Plane's RFC 2136 updater against a real BIND: names placed, duplicates
refused by the DNS server's own prerequisite check, every failure explained."""

from __future__ import annotations

import dns.reversename
import dns.update
import pytest

from controlplane.dns_update import DnsOutcome, DnsUpdateConfig, DnsUpdater
from harness.components.dns_server import BindDns
from harness.components.kea import reverse_zone
from harness.lab import Host, HostLink, Segment, Topology
from harness.lab.nsthread import NamespaceWorker
from harness.site_build import lookup, new_tsig_key

pytestmark = [pytest.mark.sim, pytest.mark.timeout(60)]

TOPOLOGY = Topology(segments=(Segment("lan", ipv6_ra=False),),
                    hosts=(Host("svc", (HostLink("lan"),)), Host("cp", (HostLink("lan"),))))


def _key() -> tuple[str, str]:
    return new_tsig_key("flexlab-cp")


@pytest.fixture
def site(make_lab):
    """A lab with BIND (signed updates only) and a worker in the Control Plane's namespace."""
    lab = make_lab(TOPOLOGY)
    key = _key()
    zone = reverse_zone(str(lab.subnets["lan"]))
    bind = BindDns(lab, "svc", "lan", {}, update_zone="site.test", tsig_key=key,
                   reverse_zones=(zone,))
    worker = NamespaceWorker(lab.ns("cp"))
    with bind:
        yield lab, bind.address, key, zone, worker
    worker.close()


def _updater(server: str, key: tuple[str, str], zone: str | None) -> DnsUpdater:
    return DnsUpdater(DnsUpdateConfig(server, "site.test", key_name=key[0], key_secret=key[1],
                                      reverse_zones=(zone,) if zone else ()))


def test_a_ready_node_resolves_forward_and_reverse(site) -> None:
    lab, server, key, zone, worker = site
    node_ip = lab.address("cp", "lan")  # any address of the segment will do for the record
    out: DnsOutcome = worker.call(_updater(server, key, zone).add, "worker1", node_ip)
    assert out.ok, out
    assert out.detail == "A and PTR added"
    assert worker.call(lookup, server, "worker1.site.test.", "A") == (node_ip,)
    ptr = dns.reversename.from_address(node_ip).to_text()
    assert worker.call(lookup, server, ptr, "PTR") == ("worker1.site.test.",)
    # the same node reporting Ready again is not a conflict
    assert worker.call(_updater(server, key, zone).add, "worker1", node_ip).ok


def test_a_name_held_by_another_address_is_refused_and_kept(site) -> None:
    _lab, server, key, _zone, worker = site
    updater = _updater(server, key, None)
    assert worker.call(updater.add, "worker2", "10.99.0.5").ok
    out = worker.call(updater.add, "worker2", "10.99.0.6")
    assert not out.ok and "already points at another address" in out.detail
    assert worker.call(lookup, server, "worker2.site.test.", "A") == ("10.99.0.5",)
    # a node this Control Plane named before, back with a new lease, keeps its name
    moved = worker.call(updater.add, "worker2", "10.99.0.7", "10.99.0.5")
    assert moved.ok, moved
    assert worker.call(lookup, server, "worker2.site.test.", "A") == ("10.99.0.7",)


def test_a_wrong_key_or_no_server_is_a_failure_with_the_reason(site) -> None:
    lab, server, _key_ok, _zone, worker = site
    wrong = worker.call(_updater(server, _key(), None).add, "worker3", "10.99.0.8")
    assert not wrong.ok and ("NOTAUTH" in wrong.detail or "BADSIG" in wrong.detail
                             or "Peer" in wrong.detail), wrong.detail
    assert worker.call(lookup, server, "worker3.site.test.", "A") == ()
    silent_ip = lab.address("cp", "lan")  # nothing listens on 53 there
    gone = worker.call(DnsUpdater(DnsUpdateConfig(silent_ip, "site.test", timeout=0.5)).add,
                       "worker3", "10.99.0.8")
    assert not gone.ok and "no answer" in gone.detail
    bad = worker.call(_updater(server, _key_ok, None).add, "worker3", "not-an-ip")
    assert not bad.ok and "not an IPv4 address" in bad.detail
