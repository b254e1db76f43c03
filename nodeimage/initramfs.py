"""Assemble the initramfs tree and write it as a reproducible gzip'd newc cpio archive.

The archive is NUL-padded to a multiple of 4 bytes so another archive can follow it.
Reproducible means: same inputs, same bytes. So every file gets a fixed mtime and
mode, the file list is sorted, cpio renumbers inodes and drops device numbers,
owners are 0:0, and gzip stores no name and no timestamp.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from pathlib import Path

from nodeimage.errors import ArchiveError
from nodeimage.kmod import Module, modules_dep

FILES_DIR = Path(__file__).resolve().parent / "files"
# (source under nodeimage/files, destination in the image, mode)
IMAGE_FILES: tuple[tuple[str, str, int], ...] = (
    ("init", "init", 0o755),
    ("agent.sh", "flexlab/agent.sh", 0o755),
    ("udhcpc.script", "flexlab/udhcpc.script", 0o755),
    ("https.sh", "flexlab/https.sh", 0o755),
)
EMPTY_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "run",
              "mnt/data", "etc", "root", "var/run")
FIXED_MTIME = 0
GZIP_LEVEL = 9
"""The initramfs's gzip level: the smallest archive for the firmware to fetch. Read at
each write, so the builder's own tests (which check layout and determinism, not size)
can take level 1: level 9 was most of their CPU."""


def stage(root: Path, busybox: Path, modules: list[Module], modules_root: Path,
          kernel_release: str) -> None:
    """Populate ``root`` with busybox, /init, the agent and the kernel modules."""
    for rel in EMPTY_DIRS:
        (root / rel).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(busybox, root / "bin/busybox")
    (root / "bin/busybox").chmod(0o755)
    # /init runs under /bin/sh before `busybox --install`; the rest get links at boot.
    (root / "bin/sh").symlink_to("busybox")
    for src, dest, mode in IMAGE_FILES:
        target = root / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FILES_DIR / src, target)
        target.chmod(mode)
    mod_dir = root / "lib/modules" / kernel_release
    mod_dir.mkdir(parents=True, exist_ok=True)  # a kernel with its drivers built in: none
    for mod in modules:
        target = mod_dir / mod.path.relative_to(modules_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mod.path, target)
    (mod_dir / "modules.dep").write_text(modules_dep(modules, modules_root))
    # Load order for /init: dependencies first, one path per line.
    (mod_dir / "flexlab.load").write_text(
        "".join(f"{mod.path.relative_to(modules_root)}\n" for mod in modules)
    )
    (root / "etc/flexlab-release").write_text(f"kernel={kernel_release}\n")


def file_list(root: Path) -> list[str]:
    """Every path under ``root``, relative and sorted, parents before children."""
    paths = [str(p.relative_to(root)) for p in root.rglob("*")]
    return sorted(paths)


def normalise(root: Path) -> None:
    """Give every entry a fixed mtime and a mode that depends only on its kind."""
    for rel in [*file_list(root), "."]:
        path = root / rel
        if path.is_symlink():
            os.utime(path, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)
            continue
        if path.is_dir():
            path.chmod(0o755)
        elif not os.access(path, os.X_OK):
            path.chmod(0o644)
        else:
            path.chmod(0o755)
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))


def write_archive(root: Path, out: Path, busybox: Path) -> None:
    """Write ``root`` as newc cpio via busybox (the host has no cpio), then gzip -n."""
    normalise(root)
    listing = "".join(f"{rel}\n" for rel in file_list(root)).encode()
    cpio_path = out.with_suffix(".cpio")
    argv = [str(busybox), "cpio", "-o", "-H", "newc", "-R", "0:0", "--ignore-devno",
            "--renumber-inodes", "-F", str(cpio_path)]
    proc = subprocess.run(argv, cwd=root, input=listing, capture_output=True, check=False)
    if proc.returncode != 0:
        raise ArchiveError(
            f"busybox cpio failed (exit {proc.returncode}): {proc.stderr.decode()[-500:]}; "
            "is the busybox-static package intact?"
        )
    with cpio_path.open("rb") as raw, out.open("wb") as dest, gzip.GzipFile(
        filename="", mode="wb", fileobj=dest, mtime=0, compresslevel=GZIP_LEVEL
    ) as gz:
        shutil.copyfileobj(raw, gz)
    cpio_path.unlink()
    # Linux takes a further (uncompressed) archive after this one only at a 4-byte
    # aligned offset and skips NULs between archives: pad, so the Control Plane CA
    # initrd (bootproxy.cainitrd) can follow however the boot loader concatenates.
    with out.open("ab") as dest:
        dest.write(b"\0" * (-out.stat().st_size % 4))
