"""``flexlab inspect``: the labs on this host, from the registry and what runs now.

The registry (harness/lab/registry.py) says what each lab meant to make; this module
checks each item against the live host — the owner and every recorded process by PID
*and* start time, namespaces by name, containers by their lab label, VMs by their
libvirt metadata — so a crashed run's leftovers show as such instead of as a lab.
Reading only: nothing here changes the host.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.lab import names
from harness.lab.docker_engine import engine_can_exist
from harness.lab.registry import LabRecord, Registry, owner_alive, process_alive
from harness.lab.vm_labels import LIBVIRT_URI, domains_by_lab, libvirt_running


@dataclass
class LiveProcess:
    """A process the lab recorded, and whether that very process still runs."""

    pid: int
    name: str
    alive: bool


@dataclass
class LiveContainer:
    """A container carrying the lab's label."""

    id: str
    name: str
    image: str
    status: str
    label: str


@dataclass
class LabView:
    """One lab as the host shows it now."""

    lab_id: str
    owner_pid: int
    owner_alive: bool
    created: float
    age_s: float
    registered: bool
    namespaces: list[str] = field(default_factory=list)
    processes: list[LiveProcess] = field(default_factory=list)
    containers: list[LiveContainer] = field(default_factory=list)
    vms: list[str] = field(default_factory=list)
    temp_dirs: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        """``running`` while its owner runs; ``leftover`` once the owner is gone (what
        ``flexlab clean`` removes)."""
        return "running" if self.owner_alive else "leftover"

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``flexlab.inspect/v1`` (docs/formats/inspect.md)."""
        data = asdict(self)
        data["state"] = self.state
        data["age_s"] = round(self.age_s, 1)
        return data


def live_namespaces() -> set[str]:
    """Names under /run/netns (what ``ip netns`` lists), without opening any."""
    try:
        return set(os.listdir("/run/netns"))
    except OSError:
        return set()


def docker_containers() -> dict[str, list[LiveContainer]]:
    """Every container with a flexlab lab label, by lab id ({} without Docker)."""
    if not engine_can_exist():
        return {}
    by_lab: dict[str, list[LiveContainer]] = {}
    for key in names.DOCKER_LABELS:
        fmt = "\t".join(("{{.ID}}", "{{.Names}}", "{{.Image}}", "{{.Status}}",
                         f'{{{{.Label "{key}"}}}}'))
        try:
            out = subprocess.run(["docker", "ps", "-a", "--filter", f"label={key}",
                                  "--format", fmt], capture_output=True, text=True,
                                 timeout=30, check=True).stdout
        except (subprocess.SubprocessError, OSError):
            continue
        for line in out.splitlines():
            cid, name, image, status, lab_id = (line.split("\t") + [""] * 5)[:5]
            by_lab.setdefault(lab_id, []).append(LiveContainer(cid, name, image, status, key))
    return by_lab


def libvirt_domains() -> dict[str, list[str]]:
    """Names of libvirt domains carrying flexlab's lab metadata, by lab id ({} without
    libvirt)."""
    if not libvirt_running():
        return {}
    try:
        import libvirt
    except ImportError:
        return {}
    try:
        conn = libvirt.openReadOnly(LIBVIRT_URI)
    except libvirt.libvirtError:
        return {}
    try:
        return {lab: [dom.name() for dom in doms] for lab, doms in domains_by_lab(conn).items()}
    finally:
        conn.close()


def view(record: LabRecord, *, netns: set[str], containers: list[LiveContainer],
         vms: list[str], now: float, registered: bool = True) -> LabView:
    """One lab's record checked against the live host (the host's state passed in, so a
    listing asks Docker and libvirt once for every lab)."""
    lab_id = record.lab_id
    own = {ns for ns in netns if ns == lab_id or ns.startswith(f"{lab_id}-")}
    return LabView(
        lab_id=lab_id, owner_pid=record.owner_pid,
        owner_alive=registered and owner_alive(record), created=record.created,
        age_s=max(0.0, now - record.created) if record.created else 0.0,
        registered=registered,
        namespaces=sorted(own | (set(record.namespaces) & netns)),
        processes=[LiveProcess(p.pid, p.name, process_alive(p)) for p in record.processes],
        containers=containers, vms=sorted(vms),
        temp_dirs=[d for d in record.temp_dirs if Path(d).exists()])


def inspect_labs(lab_ids: list[str] | None = None, *, include_leftovers: bool = False,
                 registry: Registry | None = None) -> list[LabView]:
    """The labs on this host: ``lab_ids`` only when given, else every lab whose owner
    still runs (and, with ``include_leftovers``, also those a crashed run left: registry
    entries whose owner is gone and labelled containers or VMs with no registry entry)."""
    registry = registry or Registry()
    containers = docker_containers()
    vms = libvirt_domains()
    netns = live_namespaces()
    now = time.time()
    wanted = lab_ids if lab_ids is not None else registry.lab_ids()
    if lab_ids is None and include_leftovers:
        wanted = sorted(set(wanted) | {i for i in [*containers, *vms] if names.is_lab_id(i)})
    views = []
    for lab_id in wanted:
        record = registry.load(lab_id)
        registered = record is not None
        if record is None:
            record = LabRecord(lab_id=lab_id, owner_pid=0, owner_starttime=0, created=0.0)
        v = view(record, netns=netns, containers=containers.get(lab_id, []),
                 vms=vms.get(lab_id, []), now=now, registered=registered)
        if lab_ids is None and not include_leftovers and not v.owner_alive:
            continue
        views.append(v)
    return views
