"""The lab a child process owns, found in the lab registry, and what it left behind.

For the tests that start a real ``flexlab run`` or bench script, signal or kill it once
its lab has started processes, and judge the teardown from the registry record.
"""

from __future__ import annotations

import subprocess

from harness.lab.cleanup import lab_namespaces
from harness.lab.registry import LabRecord, Registry, process_alive
from harness.wait import wait_until


def lab_of(pid: int) -> LabRecord | None:
    """The registry record owned by ``pid`` once it has started a process, else None."""
    registry = Registry()
    for lab_id in registry.lab_ids():
        record = registry.load(lab_id)
        if record is not None and record.owner_pid == pid and record.processes:
            return record
    return None


def wait_for_lab(proc: subprocess.Popen[str] | subprocess.Popen[bytes],
                 what: str) -> LabRecord:
    """The record of the lab ``proc`` registers, once it has started a process."""
    record: LabRecord = wait_until(lambda: lab_of(proc.pid), timeout=120, interval=0.05,
                                   what=what)
    return record


def assert_left_nothing(record: LabRecord) -> None:
    """No registry entry, namespace or live process of ``record``'s lab is left (judge it
    before any clean-up of the test's own could hide a leak)."""
    final = Registry().load(record.lab_id)
    assert final is None, f"registry entry left: {final}"
    assert lab_namespaces(record.lab_id) == []
    assert not [p for p in record.processes if process_alive(p)]
