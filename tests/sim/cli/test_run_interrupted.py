"""SIGTERM (a CI runner's cancel, a service manager's stop) during ``flexlab run``: the
lab is torn down — no namespace, no process, no container, no registry entry — no
traceback, exit 130. And ``flexlab inspect`` shows the lab while it runs.

The run is the real console script on the smoke scenario; the signal is sent once the
lab's registry entry shows it has started processes, i.e. mid-build or mid-boot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ..lab_owner import leftovers, owned_lab

pytestmark = [pytest.mark.sim, pytest.mark.needs_root]

ROOT = Path(__file__).resolve().parents[3]
FLEXLAB = Path(sys.executable).with_name("flexlab")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_run_tears_the_lab_down_and_exits_130(
        signum: int, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [str(FLEXLAB), "run", str(ROOT / "scenarios" / "smoke.yaml"),
         "--reports", str(tmp_path), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with owned_lab(proc, "flexlab run to register a lab with a process") as record:
        seen = subprocess.run([str(FLEXLAB), "inspect", "--json", "--lab", record.lab_id],
                              capture_output=True, text=True, timeout=60)
        listed = json.loads(seen.stdout)
        assert listed["format"] == "flexlab.inspect/v1"
        (lab,) = listed["labs"]
        assert lab["owner_pid"] == proc.pid and lab["owner_alive"] and lab["state"] == "running"
        assert lab["namespaces"] and any(p["alive"] for p in lab["processes"])
        os.kill(proc.pid, signum)
        out, err = proc.communicate(timeout=120)
        left = leftovers(record)  # the run's own teardown, before owned_lab cleans up
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err, err[-4000:]
    assert "cleaning up" in err
    assert left == []
    doc = json.loads(out)  # --json: still one document, saying what happened
    assert doc["format"] == "flexlab.run/v1" and doc["exit_status"] == 130


@pytest.mark.xdist_group("leftover-labs")  # tests/sim/lab/test_cleanup.py cleans all leftovers
def test_inspect_all_lists_a_leftover_until_clean(tmp_path: Path) -> None:
    """A lab whose owner was SIGKILLed (no clean-up possible) is a leftover: listed by
    ``inspect --all`` only, and gone after ``clean --lab``."""
    output = tmp_path / "run.out"
    with output.open("wb") as sink:
        proc = subprocess.Popen(
            [str(FLEXLAB), "run", str(ROOT / "scenarios" / "smoke.yaml"),
             "--reports", str(tmp_path / "reports")],
            stdout=sink, stderr=subprocess.STDOUT)
    with owned_lab(proc, "flexlab run to register a lab with a process") as record:
        proc.kill()
        proc.wait()
        # a run that had already ended on its own (and torn its lab down) left nothing to
        # list: say so with what it printed, not as an empty inspect (a shard run saw one)
        assert proc.returncode == -signal.SIGKILL, (
            f"the run ended by itself (exit {proc.returncode}) before the kill:\n"
            + output.read_text(errors="replace")[-3000:])
        # what the leak checks above read is really there after a kill (they can fail)
        assert any(x.startswith("namespace ") for x in leftovers(record)), leftovers(record)

        def inspect(*flags: str) -> list[dict[str, object]]:
            res = subprocess.run([str(FLEXLAB), "inspect", "--json", *flags],
                                 capture_output=True, text=True, timeout=60, check=True)
            return [lab for lab in json.loads(res.stdout)["labs"]
                    if lab["lab_id"] == record.lab_id]

        assert inspect() == []
        (lab,) = inspect("--all")
        assert lab["state"] == "leftover" and not lab["owner_alive"]
        assert lab["namespaces"]
        res = subprocess.run([str(FLEXLAB), "clean", "--lab", record.lab_id, "--json"],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
        assert json.loads(res.stdout)["labs"][0]["removed"] is True
        assert inspect("--all") == []
        assert leftovers(record) == []
