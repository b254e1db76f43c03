"""The lab: network namespaces, bridges and veths on this host, all named after one lab id."""

from harness.lab.lab import Lab
from harness.lab.topology import Host, HostLink, LinkState, Segment, Topology

__all__ = ["Host", "HostLink", "Lab", "LinkState", "Segment", "Topology"]
