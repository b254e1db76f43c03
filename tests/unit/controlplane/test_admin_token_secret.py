"""The Control Plane's admin token never appears on a command line.

A process's command line is world-readable (``ps``, ``/proc/PID/cmdline``); its
environment only to its owner. The harness starts the service with the token in
``FLEXLAB_CP_ADMIN_TOKEN``, and the token must still be the one that works."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from harness.components.controlplane_process import ControlPlaneProcess, controlplane_argv

pytestmark = pytest.mark.unit

TOKEN = "tok-3b9d1c0e-not-on-the-command-line"


def test_the_command_line_has_no_token() -> None:
    argv = controlplane_argv("127.0.0.1:0", "/nowhere/cp.sqlite3", ["--lab", "x"])
    assert not any("admin-token" in a for a in argv), argv


def test_a_started_service_keeps_its_token_off_its_command_line(tmp_path: Path) -> None:
    with ControlPlaneProcess(tmp_path / "cp.sqlite3", TOKEN) as cp:
        assert cp.pid is not None
        cmdline = Path(f"/proc/{cp.pid}/cmdline").read_bytes()
        assert TOKEN.encode() not in cmdline
        assert b"admin-token" not in cmdline
        # the token went through the environment and is the one the service accepts
        assert TOKEN.encode() in Path(f"/proc/{cp.pid}/environ").read_bytes()
        url = f"{cp.url}/api/v1/clusters"
        assert httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert httpx.get(url, headers={"Authorization": "Bearer other"}).status_code == 401


def test_the_boot_proxy_token_goes_in_its_environment(tmp_path: Path) -> None:
    """The process-mode Boot Proxy gets its Control Plane token the way the container
    does, as FLEXLAB_BP_CP_TOKEN (a sim scenario with ``kind: process`` shows it is
    read: the proxy syncs its MAC list with it)."""
    from harness.components.bootproxy import BootProxyConfig
    cfg = BootProxyConfig(name="bp", interfaces=("eth0",), boot_root=tmp_path,
                          cache_path=tmp_path / "a.json", cp_url="http://cp:8000",
                          cp_token=TOKEN)
    assert not any(TOKEN in a or "cp-token" in a for a in cfg.argv())
    assert cfg.env() == {"FLEXLAB_BP_CP_TOKEN": TOKEN}
