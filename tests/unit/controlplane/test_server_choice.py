"""The Control Plane's HTTP parser and event loop: the C pair by default, the pure-Python
pair on request (so both stay working), and a clear error for anything else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from harness.components.controlplane_process import ControlPlaneProcess

pytestmark = pytest.mark.unit

TOKEN = "tok-server-choice"


@pytest.mark.parametrize(("args", "env", "expected"), [
    ([], {}, ("httptools", "uvloop")),
    (["--http", "h11", "--loop", "asyncio"], {}, ("h11", "asyncio")),
    ([], {"FLEXLAB_CP_HTTP": "h11", "FLEXLAB_CP_LOOP": "asyncio"}, ("h11", "asyncio")),
], ids=["default", "flags", "environment"])
def test_the_service_runs_on_the_parser_and_loop_chosen(
        tmp_path: Path, args: list[str], env: dict[str, str],
        expected: tuple[str, str]) -> None:
    with ControlPlaneProcess(tmp_path / "cp.sqlite3", TOKEN, extra_args=args, env=env) as cp:
        assert cp.ready is not None
        assert (cp.ready["http"], cp.ready["loop"]) == expected
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=cp.url, headers=headers) as client:
            made = client.post("/api/v1/clusters", json={
                "name": "c1", "mode": "hybrid", "expected_nodes": 1, "environment": "test"})
            assert made.status_code == 201, made.text
            # a body, a 404 and keep-alive on one connection, through the chosen parser
            assert client.get("/api/v1/clusters/c1").json()["name"] == "c1"
            assert client.get("/api/v1/clusters/nope").status_code == 404


@pytest.mark.parametrize(("args", "env", "says"), [
    (["--http", "h2"], {}, "--http 'h2': choose httptools or h11"),
    ([], {"FLEXLAB_CP_LOOP": "trio"}, "$FLEXLAB_CP_LOOP 'trio': choose uvloop or asyncio"),
], ids=["flag", "environment"])
def test_an_unknown_choice_is_a_clear_error(tmp_path: Path, args: list[str],
                                            env: dict[str, str], says: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "controlplane", "--listen", "127.0.0.1:0",
         "--db", str(tmp_path / "cp.sqlite3"), *args],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd()), **env})
    assert proc.returncode == 2
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["event"] == "error"
    assert says in line["detail"], line
