"""Destroying a lab's resources, selected by its id and nothing broader.

Used by a lab's own teardown and by ``flexlab clean`` after a crash. Every
step runs even when an earlier one fails; the failures are returned, never
swallowed, so the caller can report them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2 import netns as pr_netns

from harness.lab import names
from harness.lab.docker_engine import engine_can_exist
from harness.lab.registry import LabRecord, Registry, owner_alive, process_alive
from harness.lab.vm_labels import LIBVIRT_URI, destroy_domain, domains_by_lab, libvirt_running


def lab_namespaces(lab_id: str) -> list[str]:
    """Namespaces that exist now and belong to ``lab_id`` by their name (``<id>`` or ``<id>-*``)."""
    return sorted(
        ns for ns in pr_netns.listnetns() if ns == lab_id or ns.startswith(f"{lab_id}-")
    )


def pids_in_namespace(ns_name: str) -> list[int]:
    """PIDs of the processes whose network namespace is ``ns_name``."""
    try:
        target = os.stat(f"/run/netns/{ns_name}")
    except OSError:
        return []
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(entry / "ns" / "net")
        except OSError:
            continue
        if (st.st_ino, st.st_dev) == (target.st_ino, target.st_dev):
            pids.append(int(entry.name))
    return pids


def _kill_and_reap(pids: list[int], errors: list[str]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        except OSError as exc:
            errors.append(f"kill {pid}: {exc}")
    deadline = time.monotonic() + 5
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]
        if pids:
            time.sleep(0.02)  # poll until the kernel has reaped them
    for pid in pids:
        errors.append(f"process {pid} survived SIGKILL")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def labelled_containers(lab_id: str | None) -> list[str]:
    """Ids of containers carrying a flexlab lab label (the current ``io.flexlab.lab`` or
    the older ``flexlab.lab``), of ``lab_id`` only when given. Raises SubprocessError/
    OSError when docker cannot be asked."""
    found: list[str] = []
    for key in names.DOCKER_LABELS:
        label = f"{key}={lab_id}" if lab_id else key
        out = subprocess.run(
            ["docker", "ps", "-aq", "--no-trunc", "--filter", f"label={label}"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.split()
        found += [c for c in out if c not in found]
    return found


def remove_docker_containers(lab_id: str | None, errors: list[str]) -> int:
    """Remove containers labelled with ``lab_id`` (or any flexlab label when None)."""
    if not engine_can_exist():
        return 0
    try:
        doomed = labelled_containers(lab_id)
        if doomed:
            subprocess.run(["docker", "rm", "-f", *doomed], capture_output=True, timeout=60,
                           check=True)
        return len(doomed)
    except (subprocess.SubprocessError, OSError) as exc:
        errors.append(f"docker clean-up for lab {lab_id or '(all)'}: {exc}")
        return 0


def labelled_docker_labs() -> list[str]:
    """Lab ids found on containers labelled ``io.flexlab.lab`` (or the older
    ``flexlab.lab``): the project's own markers."""
    if not engine_can_exist():
        return []
    found: set[str] = set()
    for key in names.DOCKER_LABELS:
        try:
            out = subprocess.run(
                ["docker", "ps", "-a", "--filter", f"label={key}", "--format",
                 f'{{{{.Label "{key}"}}}}'],
                capture_output=True, text=True, timeout=30, check=True,
            ).stdout.split()
        except (subprocess.SubprocessError, OSError):
            continue
        found.update(lab_id for lab_id in out if names.is_lab_id(lab_id))
    return sorted(found)


def destroy(record: LabRecord, registry: Registry) -> list[str]:
    """Remove everything ``record`` names or its id selects; return the errors met."""
    errors: list[str] = []
    for proc in record.processes:
        if process_alive(proc):
            _kill_and_reap([proc.pid], errors)
    remove_docker_containers(record.lab_id, errors)
    _destroy_vm_domains(record.lab_id, errors)
    _remove_root_taps(record.lab_id, errors)
    namespaces = sorted(set(record.namespaces) | set(lab_namespaces(record.lab_id)))
    for ns in namespaces:
        _kill_and_reap(pids_in_namespace(ns), errors)
    _remove_wireguard_sockets(record.lab_id, errors)
    # hosts first, the switch namespace (bridges) last
    for ns in sorted(namespaces, key=lambda n: n == record.lab_id):
        if ns in pr_netns.listnetns():
            try:
                pr_netns.remove(ns)
            except OSError as exc:
                errors.append(f"remove namespace {ns}: {exc}")
    for directory in [*record.temp_dirs, str(names.temp_dir(record.lab_id))]:
        shutil.rmtree(directory, ignore_errors=True)
        if Path(directory).exists():
            errors.append(f"temp dir {directory} could not be removed")
    if not errors:
        registry.remove(record.lab_id)
    return errors


def _destroy_vm_domains(lab_id: str, errors: list[str]) -> None:
    """Destroy libvirt domains carrying the lab's flexlab metadata label (or its name prefix)."""
    if not libvirt_running():
        return
    try:
        import libvirt
    except ImportError:
        return
    try:
        conn = libvirt.open(LIBVIRT_URI)
    except libvirt.libvirtError as exc:  # refusing: say so, keep cleaning the rest
        errors.append(f"libvirt: cannot connect to {LIBVIRT_URI}: {exc}")
        return
    try:
        doomed = {dom.name(): dom for dom in domains_by_lab(conn).get(lab_id, [])}
        doomed.update({dom.name(): dom for dom in conn.listAllDomains()
                       if dom.name().startswith(f"{lab_id}-")})
        for name, dom in doomed.items():
            try:
                destroy_domain(dom)
            except Exception as exc:
                errors.append(f"libvirt domain {name}: {exc}")
    finally:
        conn.close()


def _remove_wireguard_sockets(lab_id: str, errors: list[str]) -> None:
    """A SIGKILLed wireguard-go leaves its control socket in the host-wide directory;
    the lab's tunnel interfaces are named ``<lab id>-wg…`` (harness/wan/config.py)."""
    for sock in Path("/var/run/wireguard").glob(f"{lab_id}-*.sock"):
        try:
            sock.unlink()
        except OSError as exc:
            errors.append(f"wireguard socket {sock}: {exc}")


def _remove_root_taps(lab_id: str, errors: list[str]) -> None:
    """VM taps live in the root namespace for a moment before moving into the lab
    (``<lab id>v<n>``): remove any a crash left there."""
    with IPRoute() as ipr:
        for link in ipr.get_links():
            name = link.get("IFLA_IFNAME") or ""
            if re.fullmatch(rf"{re.escape(lab_id)}v\d+", name):
                try:
                    ipr.link("del", index=link["index"])
                except Exception as exc:
                    errors.append(f"tap {name}: {exc}")


def clean(lab_ids: list[str] | None, *, force: bool = False,
          registry: Registry | None = None) -> dict[str, list[str]]:
    """Clean the given labs, or every registered lab when ``lab_ids`` is None.

    With ``lab_ids=None`` labs whose owning process still runs are skipped
    unless ``force``: a parallel run's live lab is not a leftover.
    Returns, per lab id, the errors met (an empty list means clean).
    """
    registry = registry or Registry()
    results: dict[str, list[str]] = {}
    targets = lab_ids if lab_ids is not None else registry.lab_ids()
    if lab_ids is None:
        # labs whose registry entry is gone but whose containers still carry their label
        targets = sorted(set(targets) | set(labelled_docker_labs()))
    for lab_id in targets:
        record = registry.load(lab_id)
        if record is None:
            record = LabRecord(lab_id=lab_id, owner_pid=0, owner_starttime=0, created=0.0)
        elif lab_ids is None and not force and owner_alive(record):
            continue
        results[lab_id] = destroy(record, registry)
    return results
