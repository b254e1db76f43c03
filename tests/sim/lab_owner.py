"""The lab a child process owns, found in the lab registry, and what it left behind.

For the tests that start a real ``flexlab run`` or bench script, signal or kill it once
its lab has started processes, and judge its teardown. What is left is read *before*
the test's own clean-up (which would remove a leak and hide it), and the clean-up runs
whatever happened, so the host stays clean.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator

from harness.lab.cleanup import clean, lab_namespaces, labelled_containers
from harness.lab.registry import LabRecord, Registry, process_alive
from harness.wait import wait_until

Child = subprocess.Popen[str] | subprocess.Popen[bytes]


def lab_of(pid: int) -> LabRecord | None:
    """The registry record owned by ``pid`` once it has started a process, else None."""
    registry = Registry()
    for lab_id in registry.lab_ids():
        record = registry.load(lab_id)
        if record is not None and record.owner_pid == pid and record.processes:
            return record
    return None


@contextlib.contextmanager
def owned_lab(proc: Child, what: str) -> Iterator[LabRecord]:
    """The record of the lab ``proc`` registers, once it has started a process. On
    leaving, ``proc`` is killed if it still runs and its lab cleaned, whatever it left."""
    record: LabRecord | None = None
    try:
        record = wait_until(lambda: lab_of(proc.pid), timeout=120, interval=0.05, what=what)
        yield record
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if record is not None:
            clean([record.lab_id])


def leftovers(record: LabRecord) -> list[str]:
    """What of ``record``'s lab still exists: its registry entry, namespaces, live
    processes, labelled containers (empty when its owner tore it all down)."""
    left = [f"registry entry {record.lab_id}"] if Registry().load(record.lab_id) else []
    left += [f"namespace {ns}" for ns in lab_namespaces(record.lab_id)]
    left += [f"process {p.name} ({p.pid})" for p in record.processes if process_alive(p)]
    left += [f"container {c}" for c in labelled_containers(record.lab_id)]
    return left
