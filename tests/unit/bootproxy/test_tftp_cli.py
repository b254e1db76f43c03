"""`python3 -m bootproxy.tftp`: ready line, serves, stops on SIGTERM with its counters."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bootproxy.tftp import fetch

pytestmark = pytest.mark.unit


def test_standalone_server_serves_and_reports(tmp_path: Path) -> None:
    (tmp_path / "boot.bin").write_bytes(b"z" * 5000)
    proc = subprocess.Popen([sys.executable, "-m", "bootproxy.tftp", "--root", str(tmp_path),
                             "--host", "127.0.0.1", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready"
        result = asyncio.run(fetch("127.0.0.1", ready["port"], "boot.bin", {"tsize": "0"}))
        assert result.data == b"z" * 5000
        proc.terminate()
        out, err = proc.communicate(timeout=10)
        stopped = json.loads(out.splitlines()[-1])
        assert stopped["event"] == "stopped" and stopped["transfers_completed"] == 1, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_port_taken_exits_with_a_message(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        done = subprocess.run([sys.executable, "-m", "bootproxy.tftp", "--root", str(tmp_path),
                               "--host", "127.0.0.1", "--port", str(s.getsockname()[1])],
                              capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "cannot listen" in done.stderr
