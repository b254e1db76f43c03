"""BootProxyProcess: the ready line is returned; a failed start raises with the log attached."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.components.bootproxy_process import BootProxyProcess
from harness.errors import ComponentError

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

LOOPBACK = [
    "--interfaces", "lo", "--dhcp-port", "0", "--pxe-port", "0", "--conflict-watch", "off",
    "--metrics-host", "127.0.0.1", "--metrics-port", "0",
]


def test_ready_line_and_clean_stop(tmp_path: Path) -> None:
    proc = BootProxyProcess([*LOOPBACK, "--cache-path", str(tmp_path / "c.json")],
                            tmp_path / "bp.log")
    with proc:
        assert proc.ready is not None and proc.ready["interfaces"][0]["name"] == "lo"
    assert proc.returncode() == 0  # SIGTERM is a clean exit


def test_failed_start_carries_the_reason(tmp_path: Path) -> None:
    proc = BootProxyProcess(
        ["--interfaces", "flnosuchif0", "--cache-path", str(tmp_path / "c.json")],
        tmp_path / "bp.log",
    )
    with pytest.raises(ComponentError, match="has no IPv4 address"), proc:
        pass
