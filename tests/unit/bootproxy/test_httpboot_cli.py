"""`python3 -m bootproxy.httpboot`: files-only mode without a Control Plane."""

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.unit


def test_standalone_server_serves_files_and_no_scripts(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ipxe.efi").write_bytes(b"efi" * 1000)
    proc = subprocess.Popen([sys.executable, "-m", "bootproxy.httpboot", "--root", str(root),
                             "--host", "127.0.0.1", "--port", "0",
                             "--cache-dir", str(tmp_path / "cache")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        base = f"http://127.0.0.1:{ready['port']}"
        assert httpx.get(f"{base}/ipxe.efi").content == b"efi" * 1000
        assert httpx.get(f"{base}/boot/52:54:00:00:00:01.ipxe").status_code == 404
        assert httpx.get(f"{base}/artifacts/vmlinuz").status_code == 502
        proc.terminate()
        out, err = proc.communicate(timeout=10)
        stopped = json.loads(out.splitlines()[-1])
        assert stopped["event"] == "stopped" and stopped["responses"]["200"] == 1, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
