"""The segment the PXE rule tests run on: site server, proxy and an unaddressed client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .netlab import SERVED, Segment


@pytest.fixture
def segment() -> Iterator[Segment]:
    """site (10.77.0.1), proxy (10.77.0.2) and a client without an address whose MAC is
    the served one; all removed after the test."""
    seg = Segment({"site": "10.77.0.1/24", "proxy": "10.77.0.2/24", "client": ""}).start()
    try:
        seg.run("client", ["ip", "link", "set", "eth0", "address", SERVED])
        yield seg
    finally:
        seg.close()
