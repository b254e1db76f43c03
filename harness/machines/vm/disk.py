"""Files a VM needs before it starts: a sparse data disk and a fresh UEFI variable store."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from harness.machines.vm.domain import OVMF_VARS_TEMPLATE, DataDisk
from harness.machines.vm.errors import DiskError


def create_sparse_disk(disk: DataDisk, *, overwrite: bool = False) -> Path:
    """Create ``disk`` empty and sparse (qcow2 via qemu-img, raw via truncate).

    Sparse, so a 12 GB disk per VM costs only what the guest writes.
    """
    if disk.path.exists() and not overwrite:
        raise DiskError(f"{disk.path} already exists; pick a fresh path in the lab's temp dir")
    disk.path.parent.mkdir(parents=True, exist_ok=True)
    if disk.format == "raw":
        with disk.path.open("wb") as fh:
            fh.truncate(disk.size_bytes)
        return disk.path
    argv = ["qemu-img", "create", "-q", "-f", "qcow2", str(disk.path), str(disk.size_bytes)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise DiskError("qemu-img is missing; install qemu-utils (scripts/setup-host.sh)") from exc
    if proc.returncode != 0:
        raise DiskError(f"qemu-img create failed: {proc.stderr.strip()}")
    return disk.path


def fresh_uefi_vars(dest: Path, template: Path = OVMF_VARS_TEMPLATE) -> Path:
    """Copy the OVMF variable store template to ``dest`` (one per VM, replaced if present).

    A shared or reused store carries boot entries from earlier runs, which changes
    the order OVMF tries devices in.
    """
    if not template.exists():
        raise DiskError(f"{template} is missing; install the ovmf package")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.copyfile(template, tmp)
    os.replace(tmp, dest)
    return dest
