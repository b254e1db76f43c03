"""Topology validation: every inconsistency is named before anything is built."""

import pytest

from harness.errors import TopologyError
from harness.lab import Host, HostLink, Segment, Topology

pytestmark = pytest.mark.unit


def topo(*hosts: Host, segments: tuple[Segment, ...] = (Segment("lan", "10.9.0.0/24"),)):
    return Topology(segments=segments, hosts=hosts)


def test_valid_topology_passes():
    topo(Host("dhcp", (HostLink("lan", "10.9.0.2"),)), Host("pc", (HostLink("lan", None),))
         ).validate()


@pytest.mark.parametrize(
    ("topology", "message"),
    [
        (topo(Host("a", (HostLink("wan"),))), "host 'a' links to unknown segment 'wan'"),
        (topo(Host("a", (HostLink("lan"),)), Host("a", (HostLink("lan"),))),
         "duplicate host name 'a'"),
        (topo(Host("a", (HostLink("lan", "10.9.0.5"),)), Host("b", (HostLink("lan", "10.9.0.5"),))),
         "address clash: 10.9.0.5 is given to both 'a' and 'b'"),
        (topo(Host("a", (HostLink("lan", "10.8.0.5"),))), "10.8.0.5 is not a host address"),
        (topo(Host("a", (HostLink("lan", "10.9.0.255"),))), "not a host address"),
        (topo(Host("a", (HostLink("lan", "banana"),))), "bad address 'banana'"),
        (topo(Host("a")), "host 'a' has no links"),
        (topo(Host("Bad_Name", (HostLink("lan"),))), "host name 'Bad_Name'"),
        (topo(segments=(Segment("lan", "10.9.0.0/24"), Segment("lan"))),
         "duplicate segment name 'lan'"),
        (topo(segments=(Segment("a", "10.9.0.0/24"), Segment("b", "10.9.0.128/25"))),
         "overlaps segment 'a'"),
        (topo(segments=(Segment("a", "8.8.8.0/24"),)), "must be private"),
        (topo(segments=(Segment("a", prefixlen=30),)), "prefixlen 30 is not between 16 and 29"),
        (topo(Host("a", (HostLink("dyn", "10.1.1.1"),)), segments=(Segment("dyn"),)),
         "a fixed address needs a fixed subnet"),
    ],
)
def test_bad_topology_is_named(topology: Topology, message: str):
    with pytest.raises(TopologyError, match=message.replace("(", r"\(").replace(".", r"\.")):
        topology.validate()


def test_lab_refuses_bad_topology_before_building(tmp_path):
    from harness.lab import Lab
    from harness.lab.registry import Registry

    registry = Registry(tmp_path / "registry")
    with pytest.raises(TopologyError):
        Lab(topo(Host("a", (HostLink("wan"),))), registry=registry, reports_dir=tmp_path)
    assert registry.lab_ids() == []
    assert not (tmp_path / "registry").exists()
