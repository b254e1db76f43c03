"""The lab registry: what each lab made, written before it is made.

Each lab keeps one JSON file under /run/flexlab/labs (tmpfs: it vanishes on
reboot, as do namespaces). Intent is recorded *before* a resource is
created, so a run killed at any instant leaves a record that
``flexlab clean`` can act on, selecting by lab id and nothing broader.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.lab import names


@dataclass
class ProcessRecord:
    """A process the lab started; ``starttime`` (from /proc) guards against PID reuse."""

    pid: int
    starttime: int
    name: str


@dataclass
class LabRecord:
    """Everything one lab has made or is about to make."""

    lab_id: str
    owner_pid: int
    owner_starttime: int
    created: float
    namespaces: list[str] = field(default_factory=list)
    processes: list[ProcessRecord] = field(default_factory=list)
    temp_dirs: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """Serialise for the registry file."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> LabRecord:
        """Parse a registry file; raises ValueError/KeyError on a damaged one."""
        data = json.loads(text)
        procs = [ProcessRecord(**p) for p in data.pop("processes", [])]
        return cls(processes=procs, **data)


def process_starttime(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None if it is gone.

    A zombie (exited, not yet reaped by its parent) counts as gone.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may contain spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def process_alive(record: ProcessRecord) -> bool:
    """True if the recorded process still runs (same PID *and* same start time)."""
    return process_starttime(record.pid) == record.starttime


class Registry:
    """Reads and writes lab records atomically."""

    def __init__(self, directory: Path = names.REGISTRY_DIR) -> None:
        self.directory = directory

    def path(self, lab_id: str) -> Path:
        """Registry file of one lab."""
        return self.directory / f"{lab_id}.json"

    def save(self, record: LabRecord) -> None:
        """Write ``record`` atomically (temp file + rename)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{record.lab_id}.")
        with os.fdopen(fd, "w") as fh:
            fh.write(record.to_json())
        os.replace(tmp, self.path(record.lab_id))

    def load(self, lab_id: str) -> LabRecord | None:
        """The record of ``lab_id``, or None if there is none (or it is unreadable)."""
        try:
            return LabRecord.from_json(self.path(lab_id).read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def remove(self, lab_id: str) -> None:
        """Forget a lab once everything it made is gone."""
        self.path(lab_id).unlink(missing_ok=True)

    def lab_ids(self) -> list[str]:
        """Ids of every lab with a registry file."""
        if not self.directory.is_dir():
            return []
        return sorted(
            p.stem for p in self.directory.glob("*.json") if names.is_lab_id(p.stem)
        )


def new_record(lab_id: str) -> LabRecord:
    """A record owned by the calling process."""
    pid = os.getpid()
    return LabRecord(
        lab_id=lab_id,
        owner_pid=pid,
        owner_starttime=process_starttime(pid) or 0,
        created=time.time(),
    )


def owner_alive(record: LabRecord) -> bool:
    """True if the process that made the lab still runs."""
    return process_alive(ProcessRecord(record.owner_pid, record.owner_starttime, "owner"))
