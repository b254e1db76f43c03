"""Run a benchmark's child command so that an interrupt never leaves its lab behind.

The A/B scripts run each configuration's own bench script (a storm, a pytest
selection) as a child process.  ``subprocess.run`` answers Ctrl-C by killing the
child a quarter second later, with SIGKILL: its lab (namespaces, a container,
dnsmasq, tcpdump) then outlives the benchmark.  Here the child is told (SIGINT,
which flexlab turns into its orderly teardown; a second one it ignores) and
waited for, and only a child that is still running after ``TEARDOWN_S`` is killed.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = ["TEARDOWN_S", "run_child"]

#: how long an interrupted child may take to tear its lab down
TEARDOWN_S = 180.0


def run_child(argv: Sequence[str], *, cwd: Path, env: dict[str, str],
              teardown_s: float = TEARDOWN_S) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to its end and return its exit status and output, as
    ``subprocess.run(..., capture_output=True, text=True)`` would; on KeyboardInterrupt
    pass SIGINT on, wait for the child's teardown, then re-raise."""
    with subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        try:
            out, err = proc.communicate()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=teardown_s)  # keeps reading: a full pipe blocks
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            raise
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
