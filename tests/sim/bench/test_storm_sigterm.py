"""SIGTERM during ``bench/storm.py`` (a CI job's cancel, ``timeout``): the storm's lab is
torn down — no namespace, no process, no registry entry — exit 130, as Ctrl-C does.
Before the fix the signal killed the storm at once and left its lab behind.

The storm is the real script, resized to 400 machines so its boot lasts long enough for
the signal to land once the lab has started its processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ..lab_owner import leftovers, owned_lab

pytestmark = [pytest.mark.sim, pytest.mark.needs_root]

ROOT = Path(__file__).resolve().parents[3]


def test_sigterm_during_a_storm_tears_its_lab_down_and_exits_130(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "storm.py"), "--per-kind", "200",
         "--results", str(tmp_path / "storm.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    with owned_lab(proc, "the storm to register a lab with a process") as record:
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        left = leftovers(record)  # the storm's own teardown, before owned_lab cleans up
    assert proc.returncode == 130, err[-2000:]
    assert "SIGTERM" in err and "Traceback" not in err, err[-4000:]
    assert not (tmp_path / "storm.json").exists()  # stopped, not finished
    assert left == []
