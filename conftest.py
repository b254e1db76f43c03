"""Project-wide pytest configuration. The flexlab plugin itself is harness/pytest_plugin.py,
registered through the ``pytest11`` entry point and switched on for this repository by
``flexlab = true`` in pyproject.toml (docs/PYTEST.md); this file adds what only this
repository wants: short aliases of the plugin's options and fixtures, and its
``scenarios/**/*.yaml``.

The suite runs on pytest-xdist workers (scripts/run-tests.sh, ``--dist loadgroup``). Labs
are isolated by id, so tests run side by side; what is shared host-wide is serialised with
``@pytest.mark.xdist_group(NAME)`` — every test of a group runs on one worker, in turn:

- ``leftover-labs``: tests that SIGKILL a lab's owner and expect the leftover to be there,
  and the one that cleans every leftover of the host (``clean(None)``).
- ``neighbours``: many-machine runs; the kernel's neighbour table (gc_thresh3, 1,024 entries)
  is one budget for every namespace, and two storms at once overflow it.
- ``host-loopback-icmpv6``: the L2 site-check tests that send and listen for IPv6 router
  advertisements on the host's own loopback, which every worker shares.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.pytest_plugin import TIERS, collect_scenario, is_flexlab_scenario
from harness.suite_order import load_durations, order_items

if TYPE_CHECKING:
    from harness.lab import Lab, Topology

# pytester runs the plugin's own tests (tests/unit/test_requirement_markers.py) in real
# pytest sessions; only the root conftest may enable a plugin this way.
pytest_plugins = ["pytester"]

DURATIONS_FILE = ".test_durations"
"""Per-test seconds (pytest-split's file, ``make test-durations``): shards and the order."""

STORM_MACHINES = 50
"""A scenario booting more machines than this joins the ``neighbours`` group."""


def pytest_configure(config: pytest.Config) -> None:
    """Register ``xdist_group`` even when xdist is off (``-p no:xdist``, --strict-markers)."""
    config.addinivalue_line(
        "markers", "xdist_group(name): run on one xdist worker with the rest of the group "
        "(a resource shared host-wide; conftest.py lists the groups)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Scenario files with many machines share the neighbour table: one at a time. Then
    the suite's order (harness/suite_order.py): long lab files first, unit files between,
    unless ``--suite-order collection``."""
    for item in items:
        scenario = getattr(item, "scenario", None)
        machines = getattr(scenario, "machines", None)
        if machines and sum(getattr(m, "count", 1) or 1 for m in machines) > STORM_MACHINES:
            item.add_marker(pytest.mark.xdist_group("neighbours"))
    if config.getoption("suite_order") == "duration":
        durations = load_durations(config.rootpath / DURATIONS_FILE)
        items[:] = order_items(items, file_of=lambda item: item.path,
                               seconds_of=lambda item: durations.get(item.nodeid),
                               cpu_bound=lambda item: item.get_closest_marker("unit") is not None)


def pytest_addoption(parser: pytest.Parser) -> None:
    """This repository's short spellings of the plugin's options (same destinations)."""
    group = parser.getgroup("flexlab")
    group.addoption("--tier", action="append", choices=TIERS, dest="flexlab_tier",
                    help="alias of --flexlab-tier")
    group.addoption("--keep-lab", action="store_true", dest="flexlab_keep_lab",
                    help="alias of --flexlab-keep-lab")
    group.addoption("--boot-proxy-image", default=None, dest="boot_proxy_image",
                    help="alias of --flexlab-boot-proxy-image")
    group.addoption("--boot-proxy-kind", choices=("container", "process"), default=None,
                    dest="boot_proxy_kind", help="alias of --flexlab-boot-proxy-kind")
    # not an alias: how this repository's own suite is ordered
    parser.getgroup("flexlab-suite").addoption(
        "--suite-order", choices=("duration", "collection"), default="duration",
        dest="suite_order",
        help="duration (default): long lab files first, unit files between, by "
             f"{DURATIONS_FILE} (harness/suite_order.py); collection: as collected")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """This repository's scenarios are ``scenarios/**/*.yaml`` (the plugin itself collects
    only ``*.flexlab.yaml``, which it has already taken)."""
    from harness.builder.pytest_items import is_scenario_file

    if is_scenario_file(file_path, parent.config.rootpath) \
            and not is_flexlab_scenario(file_path):
        return collect_scenario(file_path, parent)
    return None


@pytest.fixture
def make_lab(flexlab_make_lab: Callable[[Topology], Lab]) -> Callable[[Topology], Lab]:
    """Alias of the plugin's ``flexlab_make_lab``."""
    return flexlab_make_lab


@pytest.fixture
def lab(flexlab_lab: Lab) -> Lab:
    """Alias of the plugin's ``flexlab_lab``."""
    return flexlab_lab


@pytest.fixture
def site_dhcp(flexlab_site_dhcp: object) -> object:
    """Alias of the plugin's ``flexlab_site_dhcp``."""
    return flexlab_site_dhcp


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say up front what this host can run, so a skip is never a surprise."""
    from harness.pytest_plugin import HARDWARE_MARKERS, REQUIREMENT_CHECKS, strict

    have = [name for name, check in REQUIREMENT_CHECKS.items()
            if name not in HARDWARE_MARKERS and check()]
    mode = "strict (a missing requirement fails)" if strict(config) else "missing -> skip"
    return [f"flexlab: euid={os.geteuid()} requirements met: {', '.join(have) or 'none'}; "
            f"{mode}"]
