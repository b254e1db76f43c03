"""Fixtures: a real Control Plane process on an ephemeral loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cp_helpers import ADMIN

from controlplane.client import ControlPlaneClient
from harness.components.controlplane_process import ControlPlaneProcess


@pytest.fixture(scope="module")
def cp_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for the module's database."""
    return tmp_path_factory.mktemp("cp")


@pytest.fixture(scope="module")
def cp(cp_dir: Path) -> Iterator[ControlPlaneProcess]:
    """One service per test module; stopped on every path."""
    proc = ControlPlaneProcess(cp_dir / "cp.sqlite3", ADMIN)
    proc.start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


@pytest.fixture()
def admin(cp: ControlPlaneProcess) -> Iterator[ControlPlaneClient]:
    """An admin client; faults are cleared afterwards so tests stay independent."""
    with ControlPlaneClient(cp.url, ADMIN) as client:
        try:
            yield client
        finally:
            client.clear_faults()
