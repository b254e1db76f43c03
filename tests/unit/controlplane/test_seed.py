"""Starting with --seed creates the site; a restart with the same seed is harmless."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cp_helpers import ADMIN

from controlplane.client import ControlPlaneClient
from controlplane.errors import ConfigError
from controlplane.seed import load_seed
from harness.components.controlplane_process import ControlPlaneProcess

pytestmark = pytest.mark.unit

SEED = {
    "clusters": [{"name": "edge", "mode": "standalone", "expected_nodes": 1,
                  "environment": "dev"}],
    "artifacts": {"vmlinuz": "vmlinuz.bin", "initrd.img": "initrd.bin"},
    "profiles": [{"name": "std", "kernel": "vmlinuz", "initrd": "initrd.img",
                  "cmdline": "flexlab.join={join_token}"}],
    "proxies": [{"name": "bp1", "segments": ["seg0"], "clusters": ["edge"],
                 "token": "seeded-proxy-token-0123456789"}],
    "machines": [{"mac": "52:54:00:AA:BB:01", "cluster": "edge", "role": "control-plane",
                  "hostname": "edge-1", "profile": "std"}],
}


def test_seed_builds_the_site_and_survives_restart(tmp_path: Path) -> None:
    (tmp_path / "vmlinuz.bin").write_bytes(b"K")
    (tmp_path / "initrd.bin").write_bytes(b"I")
    seed = tmp_path / "site.yaml"
    seed.write_text(yaml.safe_dump(SEED))
    args = ["--seed", str(seed)]
    for _ in range(2):
        with ControlPlaneProcess(tmp_path / "cp.sqlite3", ADMIN, extra_args=args) as proc, \
                ControlPlaneClient(proc.url, ADMIN) as admin:
            assert [m.mac for m in admin.machines()] == ["52:54:00:aa:bb:01"]
            with admin.with_token("seeded-proxy-token-0123456789") as proxy:
                _, doc, _ = proxy.assignments("bp1")
                assert doc is not None and doc["assignments"][0]["hostname"] == "edge-1"
                assert proxy.download_artifact("vmlinuz") == b"K"


def test_bad_seed_names_file_and_field(tmp_path: Path) -> None:
    seed = tmp_path / "bad.json"
    seed.write_text('{"clusters": [{"name": "x", "mode": "hybrid", "expected_nodes": 1}]}')
    with pytest.raises(ConfigError) as info:
        load_seed(seed)
    assert "bad.json" in str(info.value) and "clusters.0.environment" in str(info.value)


def test_port_in_use_fails_fast_with_the_reason(tmp_path: Path) -> None:
    import socket

    from harness.errors import ComponentError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = ControlPlaneProcess(tmp_path / "cp.sqlite3", ADMIN, listen=f"127.0.0.1:{port}")
        proc.start()
        try:
            with pytest.raises(ComponentError, match="cannot listen") as info:
                proc.wait_ready(timeout=20)
            assert "exited with status 2" in str(info.value)
        finally:
            proc.stop()
