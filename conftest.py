"""Project-wide pytest configuration. The flexlab plugin itself is harness/pytest_plugin.py,
registered through the ``pytest11`` entry point so other projects get it by installing flexlab."""

from __future__ import annotations

import os

import pytest

# pytester runs the plugin's own tests (tests/unit/test_requirement_markers.py) in real
# pytest sessions; only the root conftest may enable a plugin this way.
pytest_plugins = ["pytester"]


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say up front what this host can run, so a skip is never a surprise."""
    from harness.pytest_plugin import HARDWARE_MARKERS, REQUIREMENT_CHECKS

    have = [name for name, check in REQUIREMENT_CHECKS.items()
            if name not in HARDWARE_MARKERS and check()]
    return [f"flexlab: euid={os.geteuid()} requirements met: {', '.join(have) or 'none'}"]
