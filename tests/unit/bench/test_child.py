"""bench.child: an interrupted benchmark lets its child finish tearing down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.child import run_child

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]

# a child that tears down slowly on SIGINT, printing all the while
_CHILD = r"""
import signal, sys, time
from pathlib import Path
marker = Path(sys.argv[1])
def teardown(*_):
    for _ in range(50):
        print("x" * 4000, flush=True)  # more than a pipe holds: the parent must read on
        time.sleep(0.01)
    marker.write_text("torn down")
    sys.exit(130)
signal.signal(signal.SIGINT, teardown)
Path(sys.argv[2]).write_text("started")
while True:
    time.sleep(0.1)
"""

_PARENT = r"""
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from bench.child import run_child
run_child([sys.executable, "-c", sys.argv[2], sys.argv[3], sys.argv[4]], cwd=Path("."),
          env={}, teardown_s=float(sys.argv[5]))
"""


def _interrupt(tmp_path: Path, teardown_s: float) -> tuple[int, Path]:
    marker, started = tmp_path / "marker", tmp_path / "started"
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(REPO), _CHILD, str(marker),
                               str(started), str(teardown_s)],
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert time.monotonic() < deadline, "the child never started"
            assert parent.poll() is None, "the parent ended early"
            time.sleep(0.02)
        os.kill(parent.pid, signal.SIGINT)  # the parent alone, as `kill -INT PID` does
        return parent.wait(30), marker
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_an_interrupted_parent_waits_for_its_child_to_tear_down(tmp_path: Path) -> None:
    rc, marker = _interrupt(tmp_path, teardown_s=30)
    assert rc != 0  # the interrupt still ends the parent
    assert marker.read_text() == "torn down"


def test_a_child_that_does_not_finish_in_time_is_killed(tmp_path: Path) -> None:
    began = time.monotonic()
    rc, marker = _interrupt(tmp_path, teardown_s=0.1)
    assert rc != 0
    assert not marker.exists()
    assert time.monotonic() - began < 20


def test_output_and_status_come_back_as_from_subprocess_run(tmp_path: Path) -> None:
    done = run_child([sys.executable, "-c", "import sys; print('out'); "
                      "print('err', file=sys.stderr); sys.exit(3)"], cwd=tmp_path, env={})
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
