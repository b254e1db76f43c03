"""Kernel modules: find them in an unpacked kernel package and close over their dependencies.

Debian's kernel package ships no modules.dep (depmod runs at install time), so
the dependencies are read from each module's ``.modinfo`` ELF section.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from nodeimage.errors import ModuleError

# What the VM NICs and disks need: virtio (net, blk, pci), Intel e1000/e1000e,
# Realtek 8139, SATA (q35 default disk bus) and IDE (pc), SCSI disks, and ext4
# (which mounts the ext2 data disk: CONFIG_EXT4_USE_FOR_EXT2) with crc32c_generic,
# which ext4 asks the crypto API for at mount time (nothing autoloads it here), and the
# virtio RNG, which seeds the kernel's RNG at boot (domain.py gives every VM one).
WANTED_MODULES: tuple[str, ...] = (
    "virtio_pci", "virtio_ring", "virtio_net", "virtio_blk", "virtio_rng",
    "e1000", "e1000e", "8139too", "8139cp",
    "ahci", "ata_piix", "sd_mod", "ext4", "crc32c_generic",
)
OPTIONAL_MODULES: frozenset[str] = frozenset({"8139too", "8139cp"})


@dataclass(frozen=True)
class Module:
    """A kernel module file and the modules it depends on."""

    name: str
    path: Path
    depends: tuple[str, ...]


def normalise(name: str) -> str:
    """Module names compare with ``-`` and ``_`` as the same character, as modprobe does."""
    return name.replace("-", "_")


def modinfo(path: Path) -> dict[str, list[str]]:
    """Return the ``key=value`` strings of a module's ``.modinfo`` section."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise ModuleError(f"{path} is not a 64-bit ELF module; is the kernel package amd64?")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        base = shoff + index * shentsize
        name_off, = struct.unpack_from("<I", data, base)
        offset, size = struct.unpack_from("<QQ", data, base + 0x18)
        return name_off, offset, size

    _, str_off, _ = section(shstrndx)
    info: dict[str, list[str]] = {}
    for index in range(shnum):
        name_off, offset, size = section(index)
        end = data.index(b"\0", str_off + name_off)
        if data[str_off + name_off:end] != b".modinfo":
            continue
        for entry in data[offset:offset + size].split(b"\0"):
            key, sep, value = entry.decode("utf-8", "replace").partition("=")
            if sep:
                info.setdefault(key, []).append(value)
    return info


def index_modules(modules_dir: Path) -> dict[str, Path]:
    """Map every module name under ``lib/modules/<ver>/kernel`` to its file."""
    found: dict[str, Path] = {}
    for path in sorted(modules_dir.rglob("*.ko")):
        found[normalise(path.stem)] = path
    if not found:
        raise ModuleError(f"no .ko files under {modules_dir}; is this a linux-image package?")
    return found


def resolve(modules_dir: Path, wanted: tuple[str, ...] = WANTED_MODULES) -> list[Module]:
    """Return ``wanted`` plus all dependencies, ordered so each loads after its dependencies."""
    available = index_modules(modules_dir)
    ordered: list[Module] = []
    done: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = normalise(name)
        if name in done:
            return
        if name in chain:
            raise ModuleError(f"module dependency cycle: {' -> '.join((*chain, name))}")
        path = available.get(name)
        if path is None:
            raise ModuleError(
                f"module {name} (needed by {chain[-1] if chain else 'the image'}) is not in "
                f"{modules_dir}; it may be built in (check boot/config-*) or the list is wrong"
            )
        deps = tuple(
            normalise(d) for value in modinfo(path).get("depends", []) for d in value.split(",")
            if d
        )
        for dep in deps:
            visit(dep, (*chain, name))
        done.add(name)
        ordered.append(Module(name, path, deps))

    for name in wanted:
        if normalise(name) not in available and normalise(name) in OPTIONAL_MODULES:
            continue
        visit(name, ())
    return ordered


def modules_dep(modules: list[Module], root: Path) -> str:
    """Render modules.dep (paths relative to ``root``) so busybox modprobe works in the guest."""
    by_name = {m.name: m for m in modules}

    def closure(mod: Module) -> list[str]:
        seen: list[str] = []

        def walk(m: Module) -> None:
            for dep in m.depends:
                if dep not in seen:
                    seen.append(dep)
                    walk(by_name[dep])

        walk(mod)
        return seen

    lines = []
    for mod in sorted(modules, key=lambda m: str(m.path)):
        deps = " ".join(str(by_name[d].path.relative_to(root)) for d in closure(mod))
        lines.append(f"{mod.path.relative_to(root)}: {deps}".rstrip())
    return "\n".join(lines) + "\n"
