"""Project-wide pytest configuration. The flexlab plugin itself is harness/pytest_plugin.py,
registered through the ``pytest11`` entry point so other projects get it by installing flexlab.

The suite runs on pytest-xdist workers (scripts/run-tests.sh, ``--dist loadgroup``). Labs
are isolated by id, so tests run side by side; what is shared host-wide is serialised with
``@pytest.mark.xdist_group(NAME)`` — every test of a group runs on one worker, in turn:

- ``leftover-labs``: tests that SIGKILL a lab's owner and expect the leftover to be there,
  and the one that cleans every leftover of the host (``clean(None)``).
- ``neighbours``: many-machine runs; the kernel's neighbour table (gc_thresh3, 1,024 entries)
  is one budget for every namespace, and two storms at once overflow it.
"""

from __future__ import annotations

import os

import pytest

# pytester runs the plugin's own tests (tests/unit/test_requirement_markers.py) in real
# pytest sessions; only the root conftest may enable a plugin this way.
pytest_plugins = ["pytester"]

STORM_MACHINES = 50
"""A scenario booting more machines than this joins the ``neighbours`` group."""


def pytest_configure(config: pytest.Config) -> None:
    """Register ``xdist_group`` even when xdist is off (``-p no:xdist``, --strict-markers)."""
    config.addinivalue_line(
        "markers", "xdist_group(name): run on one xdist worker with the rest of the group "
        "(a resource shared host-wide; conftest.py lists the groups)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Scenario files with many machines share the neighbour table: one at a time."""
    for item in items:
        scenario = getattr(item, "scenario", None)
        machines = getattr(scenario, "machines", None)
        if machines and sum(getattr(m, "count", 1) or 1 for m in machines) > STORM_MACHINES:
            item.add_marker(pytest.mark.xdist_group("neighbours"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say up front what this host can run, so a skip is never a surprise."""
    from harness.pytest_plugin import HARDWARE_MARKERS, REQUIREMENT_CHECKS

    have = [name for name, check in REQUIREMENT_CHECKS.items()
            if name not in HARDWARE_MARKERS and check()]
    return [f"flexlab: euid={os.geteuid()} requirements met: {', '.join(have) or 'none'}"]
