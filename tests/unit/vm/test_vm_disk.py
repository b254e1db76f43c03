"""Sparse data disks and per-VM UEFI variable stores."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.machines.vm.disk import create_sparse_disk, fresh_uefi_vars
from harness.machines.vm.domain import DataDisk
from harness.machines.vm.errors import DiskError

pytestmark = pytest.mark.unit


def test_raw_disk_is_sparse(tmp_path: Path) -> None:
    disk = DataDisk(tmp_path / "d.raw", size_bytes=12 * 1024**3, format="raw")
    path = create_sparse_disk(disk)
    st = path.stat()
    assert st.st_size == 12 * 1024**3
    assert st.st_blocks * 512 < 1024**2


@pytest.mark.needs_binary("qemu-img", how="apt-get install qemu-utils")
def test_qcow2_disk_has_virtual_size(tmp_path: Path) -> None:
    disk = DataDisk(tmp_path / "d.qcow2", size_bytes=12 * 1024**3)
    path = create_sparse_disk(disk)
    info = subprocess.run(["qemu-img", "info", "--output=json", str(path)],
                          capture_output=True, text=True, check=True).stdout
    assert '"virtual-size": 12884901888' in info
    assert path.stat().st_size < 1024**2


def test_existing_disk_is_not_overwritten(tmp_path: Path) -> None:
    disk = DataDisk(tmp_path / "d.raw", size_bytes=1024, format="raw")
    disk.path.write_bytes(b"data")
    with pytest.raises(DiskError, match="already exists"):
        create_sparse_disk(disk)
    assert disk.path.read_bytes() == b"data"


def test_fresh_uefi_vars_replaces_old_copy(tmp_path: Path) -> None:
    template = tmp_path / "OVMF_VARS.fd"
    template.write_bytes(b"\x00" * 64)
    dest = tmp_path / "vm" / "vars.fd"
    fresh_uefi_vars(dest, template)
    dest.write_bytes(b"boot entries from an earlier run")
    fresh_uefi_vars(dest, template)
    assert dest.read_bytes() == template.read_bytes()


def test_missing_template_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DiskError, match="ovmf"):
        fresh_uefi_vars(tmp_path / "v.fd", tmp_path / "missing.fd")
