"""A lab for the emulators: site DHCP running, hosts for a proxy, a web server and machines."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from harness.components.dnsmasq import SiteDhcp
from harness.lab import Lab, Topology

from .webroot import TOPOLOGY


@pytest.fixture
def emu_lab(make_lab: Callable[[Topology], Lab]) -> Iterator[Lab]:
    """The emulator lab with the site DHCP server running."""
    lab = make_lab(TOPOLOGY)
    with SiteDhcp(lab, "dhcp", "lan"):
        yield lab
