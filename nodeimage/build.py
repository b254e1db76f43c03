"""Build the node image (vmlinuz + initrd.img + manifest.json), cached by a hash of its inputs.

Output goes to ``build/nodeimage/<image id>/``; the id is a hash over the exact
Debian package versions and digests, the module list, and our own files (init,
agent, and this builder), so any change to an input gives a new directory and
an unchanged input reuses the old one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bootproxy.cainitrd import CA_PATH
from nodeimage import initramfs, kernel, kmod, ntpclient, packages, tlsclient
from nodeimage.errors import PackageError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "build" / "nodeimage"
DEFAULT_CACHE = REPO_ROOT / ".cache" / "nodeimage"
FORMAT_VERSION = 1
# The kernel command line a VM needs besides the flexlab.* parameters.
BASE_CMDLINE = "console=ttyS0 panic=-1"
_BUILDER_SOURCES = ("build.py", "initramfs.py", "kmod.py", "packages.py", "tlsclient.py",
                    "ntpclient.py")
# Which kernel the image boots: "flexlab" (built from Debian's source with the lab's drivers
# built in, nodeimage/kernel.py) or "debian" (Debian's packaged kernel and its modules).
KERNELS = ("flexlab", "debian")
KERNEL_ENV = "FLEXLAB_NODE_KERNEL"


def kernel_choice(explicit: str | None = None) -> str:
    """The kernel to build with: ``explicit``, else $FLEXLAB_NODE_KERNEL, else "flexlab"."""
    choice = explicit or os.environ.get(KERNEL_ENV) or "flexlab"
    if choice not in KERNELS:
        raise PackageError(f"unknown node kernel {choice!r} (from "
                           f"{'--kernel' if explicit else '$' + KERNEL_ENV}): "
                           f"pick one of {', '.join(KERNELS)}")
    return choice


@dataclass(frozen=True)
class BuildResult:
    """Where a built image lives and whether it came from the cache."""

    image_id: str
    directory: Path
    cached: bool

    @property
    def kernel(self) -> Path:
        """The kernel for ``-kernel`` or libvirt ``<os><kernel>``."""
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        """The initramfs for ``-initrd`` or libvirt ``<os><initrd>``."""
        return self.directory / "initrd.img"

    @property
    def manifest(self) -> dict[str, object]:
        """The parsed manifest.json (inputs, digests, kernel release, cmdline)."""
        loaded: dict[str, object] = json.loads((self.directory / "manifest.json").read_text())
        return loaded


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _own_files() -> dict[str, str]:
    here = Path(__file__).resolve().parent
    files = {f"files/{src}": _sha256(initramfs.FILES_DIR / src)
             for src, _, _ in initramfs.IMAGE_FILES}
    files.update({name: _sha256(here / name) for name in _BUILDER_SOURCES})
    return dict(sorted(files.items()))


def input_digest(pkgs: list[packages.DebPackage],
                 kernel_record: dict[str, object] | None = None) -> tuple[str, dict[str, object]]:
    """Return the image id and the input record it was computed from. ``kernel_record``
    describes a kernel built here (None: the first package is Debian's kernel)."""
    inputs: dict[str, object] = {
        "format": FORMAT_VERSION,
        "packages": [p.as_manifest() for p in pkgs],
        "modules": [] if kernel_record else list(kmod.WANTED_MODULES),
        "files": _own_files(),
    }
    if kernel_record:
        inputs["kernel"] = kernel_record
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()[:16], inputs


def latest_built(out_root: Path = DEFAULT_OUT) -> BuildResult | None:
    """The most recently built image under ``out_root``, without asking apt anything.

    For callers that only need *an* image (the KVM probe at pytest start-up) and
    must not trigger a download; ``None`` when nothing was built yet.
    """
    manifests = sorted(out_root.glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    if not manifests:
        return None
    directory = manifests[-1].parent
    return BuildResult(directory.name, directory, cached=True)


def prune(out_root: Path = DEFAULT_OUT, keep: int = 2) -> list[Path]:
    """Delete all but the ``keep`` newest images (every agent change makes a new ~11 MB one)."""
    if keep < 1:
        raise PackageError("keep at least one image: --keep must be >= 1")
    manifests = sorted(out_root.glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    doomed = [m.parent for m in manifests[:-keep]]
    for directory in doomed:
        shutil.rmtree(directory)
    return doomed


def build_image(out_root: Path = DEFAULT_OUT, cache_dir: Path = DEFAULT_CACHE,
                kernel_package: str | None = None, force: bool = False,
                kernel_kind: str | None = None) -> BuildResult:
    """Build (or reuse) the node image and return where it is. ``kernel_kind`` picks the
    kernel (see :func:`kernel_choice`); ``kernel_package`` pins Debian's (kind "debian")."""
    # a pinned Debian kernel package means Debian's kernel unless a kind is asked for
    kind = "debian" if kernel_package and not kernel_kind else kernel_choice(kernel_kind)
    if kernel_package and kind != "debian":
        raise PackageError("--kernel-package pins Debian's kernel: it needs --kernel debian")
    debs = cache_dir / "debs"
    ntp_only = [name for name in ntpclient.NTP_PACKAGES if name not in tlsclient.TLS_PACKAGES]
    busybox_deb, *rest = packages.download_all(
        [packages.BUSYBOX_PACKAGE, *tlsclient.TLS_PACKAGES, *ntp_only], debs)
    tls_debs, ntp_debs = rest[:len(tlsclient.TLS_PACKAGES)], rest[len(tlsclient.TLS_PACKAGES):]
    # the kernel as (release, vmlinuz, modules, their root), read only when the image is built
    load_kernel: Callable[[], tuple[str, Path, list[kmod.Module], Path]]
    if kind == "flexlab":
        built = kernel.build_kernel(cache_dir, force=force)
        image_id, inputs = input_digest([busybox_deb, *tls_debs, *ntp_debs],
                                        built.as_manifest())
        # built in, its drivers need no modules
        load_kernel = functools.partial(lambda b: (b.release, b.image, [], Path("/")), built)
    else:
        kernel_name = kernel_package or packages.resolve_kernel_package()
        if not packages.KERNEL_PACKAGE_RE.match(kernel_name):
            raise PackageError(
                f"{kernel_name} is not a linux-image-6.1.*-amd64 package; pick one from "
                "`apt-cache search --names-only '^linux-image-6.1.*-amd64$'`"
            )
        kernel_deb = packages.download(kernel_name, debs)
        image_id, inputs = input_digest([kernel_deb, busybox_deb, *tls_debs, *ntp_debs])
        load_kernel = functools.partial(_debian_kernel, kernel_deb, cache_dir)
    final = out_root / image_id
    if (final / "manifest.json").exists() and not force:
        return BuildResult(image_id, final, cached=True)

    busybox = packages.extract(busybox_deb, cache_dir) / "bin" / "busybox"
    tls_trees = {deb.name: packages.extract(deb, cache_dir) for deb in tls_debs}
    ntp_trees = {deb.name: packages.extract(deb, cache_dir) for deb in ntp_debs}
    ntp_trees.update({name: tls_trees[name] for name in ntpclient.NTP_PACKAGES
                      if name in tls_trees})
    release, vmlinuz, modules, modules_root = load_kernel()

    out_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{image_id}-", dir=out_root))
    try:
        tree = work / "root"
        tree.mkdir()
        initramfs.stage(tree, busybox, modules, modules_root, release)
        tls_files = tlsclient.stage(tree, tls_trees)
        ntp_files = ntpclient.stage(tree, ntp_trees)
        initramfs.write_archive(tree, work / "initrd.img", busybox)
        shutil.rmtree(tree)
        shutil.copyfile(vmlinuz, work / "vmlinuz")
        manifest = {
            "image_id": image_id,
            "kernel_release": release,
            "kernel": kind,
            "cmdline": BASE_CMDLINE,
            "agent_cmdline_keys": ["flexlab.cp", "flexlab.token", "flexlab.mac",
                                   "flexlab.poweroff"],
            "modules": [m.name for m in modules],
            "tls_client": {"program": "/" + tlsclient.PROGRAM, "https": "/flexlab/https.sh",
                           "ca_path": "/" + CA_PATH,
                           "files": ["/" + f for f in tls_files]},
            "ntp_client": {"program": "/" + ntpclient.PROGRAM,
                           "files": ["/" + f for f in ntp_files]},
            "outputs": {name: {"sha256": _sha256(work / name),
                               "size": (work / name).stat().st_size}
                        for name in ("vmlinuz", "initrd.img")},
            "inputs": inputs,
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if final.exists():
            shutil.rmtree(final)
        work.chmod(0o755)
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BuildResult(image_id, final, cached=False)


def _debian_kernel(kernel_deb: packages.DebPackage,
                   cache_dir: Path) -> tuple[str, Path, list[kmod.Module], Path]:
    """Debian's kernel unpacked: its release, vmlinuz, the wanted modules and their root."""
    kernel_tree = packages.extract(kernel_deb, cache_dir)
    releases = sorted(p.name for p in (kernel_tree / "lib/modules").iterdir())
    if len(releases) != 1:
        raise PackageError(f"expected one kernel release in {kernel_deb.path}, found {releases}")
    release = releases[0]
    modules_root = kernel_tree / "lib/modules" / release
    return (release, kernel_tree / "boot" / f"vmlinuz-{release}",
            kmod.resolve(modules_root / "kernel"), modules_root)
