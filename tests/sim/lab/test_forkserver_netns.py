"""A service forked warm runs in the lab namespace it was started for, as one started
by ``nsenter --net`` would: the namespace is the child's, not the fork server's."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import textwrap
from pathlib import Path

import pytest

from harness.forkserver import ForkServer

pytestmark = pytest.mark.sim


def test_a_forked_service_runs_in_its_namespace(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "lib" / "nssvc"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(textwrap.dedent('''
        import json, os
        def main(argv):
            print(json.dumps({"inode": os.stat("/proc/self/ns/net").st_ino}), flush=True)
            return 0
    '''))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "lib"))
    name = f"flxfs{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    server = ForkServer("nssvc")
    try:
        inside = server.spawn([], tmp_path / "in.log", netns=name, env={}, cwd=tmp_path)
        outside = server.spawn([], tmp_path / "out.log", netns=None, env={}, cwd=tmp_path)
        assert inside.wait(timeout=10) == 0 and outside.wait(timeout=10) == 0
        lab_inode = os.stat(f"/run/netns/{name}").st_ino
        host_inode = os.stat("/proc/self/ns/net").st_ino
        assert json.loads((tmp_path / "in.log").read_text())["inode"] == lab_inode
        assert json.loads((tmp_path / "out.log").read_text())["inode"] == host_inode
        assert lab_inode != host_inode
        # the server itself never left this host's namespace
        assert os.stat(f"/proc/{server.pid}/ns/net").st_ino == host_inode
    finally:
        server.close()
        subprocess.run(["ip", "netns", "del", name], check=False)
