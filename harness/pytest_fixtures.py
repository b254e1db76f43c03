"""The fixtures flexlab's pytest plugin offers a project that opted in (``flexlab = true``).

A separate module from :mod:`harness.pytest_plugin` so that merely installing flexlab
imports nothing heavy (pyroute2 comes with :mod:`harness.lab`): the plugin registers this
module only after the project asked. Every name starts with ``flexlab_`` so it cannot
shadow or stand in for a fixture of the project's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.lab import Host, HostLink, Lab, Segment, Topology

DEFAULT_TOPOLOGY = Topology(
    segments=(Segment("lan"),),
    hosts=(Host("dhcp", (HostLink("lan"),)), Host("client", (HostLink("lan", address=None),))),
)
"""The ``flexlab_lab`` fixture's topology without a ``topology`` marker: segment ``lan``,
hosts ``dhcp`` (addressed) and ``client`` (to be leased an address)."""


def attach_artifacts(paths: list[Path]) -> None:
    """Attach files (pcaps, logs, consoles) to the current Allure test result."""
    try:
        import allure
    except ImportError:
        return
    for path in paths:
        if path.is_file() and path.stat().st_size > 0:
            allure.attach.file(str(path), name=path.name, extension=path.suffix.lstrip("."))


@pytest.fixture
def flexlab_make_lab(request: pytest.FixtureRequest) -> Iterator[Callable[[Topology], Lab]]:
    """Build labs from topologies; each is torn down (and its evidence attached) after the
    test, on failure too."""
    labs: list[Lab] = []
    reports = Path(request.config.getoption("flexlab_reports")) / "labs"
    keep = request.config.getoption("flexlab_keep_lab")

    def make(topology: Topology) -> Lab:
        lab = Lab(topology, reports_dir=reports)
        lab.build()
        labs.append(lab)
        return lab

    try:
        yield make
    finally:
        errors = []
        for lab in reversed(labs):
            if keep:
                print(f"--flexlab-keep-lab: lab {lab.id} left running; "
                      f"`flexlab clean --lab {lab.id}`")
                continue
            try:
                lab.teardown()
            except Exception as exc:
                errors.append(exc)
            attach_artifacts(lab.artifacts())
        if errors:
            raise errors[0]


@pytest.fixture
def flexlab_lab(request: pytest.FixtureRequest,
                flexlab_make_lab: Callable[[Topology], Lab]) -> Lab:
    """A built lab: the topology of ``@pytest.mark.topology(t)`` or :data:`DEFAULT_TOPOLOGY`."""
    marker = request.node.get_closest_marker("topology")
    topology = marker.args[0] if marker else DEFAULT_TOPOLOGY
    return flexlab_make_lab(topology)


@pytest.fixture
def flexlab_site_dhcp(flexlab_lab: Lab) -> Iterator[object]:
    """The site's DHCP server (dnsmasq) on host ``dhcp`` serving segment ``lan``, ready."""
    from harness.components.dnsmasq import SiteDhcp

    server = SiteDhcp(flexlab_lab, "dhcp", "lan")
    with server:
        yield server
