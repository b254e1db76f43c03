"""Assemble the initramfs tree and write it as a reproducible LZ4-compressed newc cpio archive.

The archive is NUL-padded to a multiple of 4 bytes so another archive can follow it.
Reproducible means: same inputs, same bytes. So every file gets a fixed mtime and
mode, the file list is sorted, cpio renumbers inodes and drops device numbers,
owners are 0:0, and the compressor (the ``lz4`` tool, legacy frames, which the kernel's
initramfs unpacker reads) stores no name and no timestamp.

Why LZ4 and not gzip: under TCG the guest kernel's inflate of a gzip'd initramfs is
emulated instruction by instruction and was a large part of its boot; LZ4 decompresses
several times faster for a somewhat larger file, which the boot loader fetches over the
lab's own network (the A/B: bench/results/vmboot-initrd-lz4-ab.json).
"""

from __future__ import annotations

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


# The kernel reads LZ4's legacy frame format (``lz4 -l``) for an initramfs, not the
# current frame format. Level 9 (high compression) costs the build a second or two and the
# decompression nothing.
LZ4_COMMAND = ("lz4", "-l", "-9", "-q", "-c")
LZ4_LEGACY_MAGIC = b"\x02\x21\x4c\x18"
LZ4_END_MARK = b"\0\0\0\0"


def _lz4(argv: list[str], data: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(argv, input=data, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise ArchiveError("the lz4 tool is missing: make setup installs it "
                           "(apt-get install lz4)") from exc
    if proc.returncode != 0:
        raise ArchiveError(f"`{' '.join(argv)}` failed (exit {proc.returncode}): "
                           f"{proc.stderr.decode(errors='replace')[-500:]}")
    return proc.stdout


def compressor() -> str:
    """The lz4 tool's version line, part of the image id: the same cpio compressed by
    another lz4 release may give other bytes. "lz4 missing" when it is not installed (a
    cached image stays usable; a build then stops with how to install it)."""
    try:
        proc = subprocess.run(["lz4", "--version"], capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        return "lz4 missing"
    line = (proc.stdout or proc.stderr).strip().splitlines()
    return " ".join(line[0].replace("*", " ").split()) if line else "lz4 unknown"


def lz4_stream_length(image: bytes) -> int:
    """Bytes of ``image`` that are its LZ4 legacy stream: the magic, then blocks (a 32-bit
    little-endian size and that many bytes) up to a zero size or the end; what follows is
    padding or another archive. The kernel reads it the same way (lib/decompress_unlz4.c:
    a zero size ends the stream)."""
    if not image.startswith(LZ4_LEGACY_MAGIC):
        raise ArchiveError("not an LZ4 legacy-frame initramfs (it should start 02 21 4c 18)")
    pos = len(LZ4_LEGACY_MAGIC)
    while pos + 4 <= len(image):
        size = int.from_bytes(image[pos:pos + 4], "little")
        if size == 0:
            break
        if image[pos:pos + 4] != LZ4_LEGACY_MAGIC:
            if pos + 4 + size > len(image):
                raise ArchiveError(f"LZ4 block at byte {pos} runs past the end of the image")
            pos += size
        pos += 4
    return pos


def uncompressed(image: bytes) -> bytes:
    """The cpio archive inside an initrd this module wrote (the end mark and padding after
    its LZ4 stream left out)."""
    return _lz4(["lz4", "-d", "-q", "-c"], data=image[:lz4_stream_length(image)])


def write_archive(root: Path, out: Path, busybox: Path) -> None:
    """Write ``root`` as newc cpio via busybox (the host has no cpio), then LZ4 (legacy)."""
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
    # A zero block size after the stream ends it for the kernel (the lz4 tool writes none):
    # without it, an archive appended next would be read as one more LZ4 block.
    out.write_bytes(_lz4([*LZ4_COMMAND, str(cpio_path)]) + LZ4_END_MARK)
    cpio_path.unlink()
    # Linux takes a further (uncompressed) archive after this one only at a 4-byte
    # aligned offset and skips NULs between archives: pad, so the Control Plane CA
    # initrd (bootproxy.cainitrd) can follow however the boot loader concatenates.
    with out.open("ab") as dest:
        dest.write(b"\0" * (-out.stat().st_size % 4))
