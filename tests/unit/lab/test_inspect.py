"""``flexlab inspect`` reads the registry and checks each record against the live host:
a lab whose owner runs is ``running``; one whose owner is gone is a ``leftover``, listed
only when asked for (``--all``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.lab.inspect import inspect_labs
from harness.lab.registry import ProcessRecord, Registry, new_record, process_starttime

pytestmark = pytest.mark.unit


def test_running_and_leftover_labs(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    mine = new_record("flrun01")
    mine.processes.append(ProcessRecord(os.getpid(), process_starttime(os.getpid()) or 0,
                                        "pytest"))
    mine.temp_dirs.append(str(tmp_path))
    registry.save(mine)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = new_record("flgone1")
    gone.owner_pid, gone.owner_starttime = dead.pid, 1
    gone.processes.append(ProcessRecord(dead.pid, 1, "dnsmasq"))
    gone.created = time.time() - 3600
    registry.save(gone)

    running = inspect_labs(registry=registry)
    assert [v.lab_id for v in running] == ["flrun01"]
    (view,) = running
    assert view.state == "running" and view.registered
    assert [(p.name, p.alive) for p in view.processes] == [("pytest", True)]
    assert view.temp_dirs == [str(tmp_path)]

    every = {v.lab_id: v for v in inspect_labs(include_leftovers=True, registry=registry)}
    assert set(every) >= {"flrun01", "flgone1"}
    left = every["flgone1"]
    assert left.state == "leftover" and not left.owner_alive
    assert [p.alive for p in left.processes] == [False]
    assert 3590 < left.age_s < 3700
    doc = left.to_json()
    assert doc["state"] == "leftover" and doc["processes"][0]["name"] == "dnsmasq"


def test_asking_for_a_lab_by_id_lists_it_even_without_a_record(tmp_path: Path) -> None:
    (view,) = inspect_labs(["flnone1"], registry=Registry(tmp_path))
    assert not view.registered and view.state == "leftover" and view.processes == []
