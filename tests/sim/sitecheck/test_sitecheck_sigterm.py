"""A site-check killed with SIGTERM while --serve runs stops its own Boot Proxy, Control
Plane and capture before it exits (a CI job's timeout or a service manager sends SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from harness.sitecheck.sites import SiteLab, load_site
from harness.wait import wait_until

pytestmark = [pytest.mark.sim, pytest.mark.timeout(180)]


def _children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


def test_sigterm_during_serve_stops_everything_it_started(tmp_path: Path) -> None:
    with SiteLab(load_site("good"), checker_segment="lan") as site:
        argv = site.in_checker(site.sitecheck_argv(
            ["--serve", "52:54:00:5e:00:09", "--serve-seconds", "120", "--listen", "1"],
            tmp_path / "out"))
        with open(tmp_path / "stderr", "w") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_until(lambda: ":4011" in site.lab.run(site.checker_host,
                                                       ["ss", "-Hlun", "sport = :4011"]),
                       timeout=120, what="the --serve Boot Proxy to listen on 4011",
                       interval=0.2)
            children = _children(proc.pid)
            assert len(children) >= 2, children  # at least the Boot Proxy and Control Plane
            os.kill(proc.pid, signal.SIGTERM)
            rc = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    said = (tmp_path / "stderr").read_text()
    assert rc == 130 and "interrupted" in said, said  # docs/CLI.md
    assert not [c for c in children if Path(f"/proc/{c}").exists()], "children left running"
