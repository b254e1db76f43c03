"""Build the node image's x86-64 kernel from Debian's ``linux-source-6.1``, cached by its inputs.

Why build one: Debian's kernel is XZ-compressed with every driver a module. Under TCG
(KVM does not work on the lab host) the decompressor and each module load run as
emulated code, which made them the largest part of a VM's power-on -> Ready time
(bench/results/vmboot-console-phases.json). This kernel has the drivers the lab's VMs
use built in and is LZ4-compressed; ``nodeimage/kernel.config`` lists what it carries
and why. Debian's kernel stays one flag away (``--kernel debian``).

The source comes from the Debian package (downloaded, not installed), the config is
``make tinyconfig`` plus that fragment, and the build is stamped with fixed user, host
and time, so the same package and fragment give the same kernel. The result lives in
``<cache>/kernel/<digest>/`` (bzImage, .config, release); the source tree is removed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nodeimage import packages
from nodeimage.errors import KernelBuildError

SOURCE_PACKAGE = "linux-source-6.1"
FRAGMENT = Path(__file__).resolve().parent / "kernel.config"
# programs the kernel build runs (gcc, make, flex, bison, bc; lz4 compresses the image)
TOOLS: tuple[str, ...] = ("make", "gcc", "flex", "bison", "bc", "lz4", "tar", "xz")
# objtool links against libelf
HEADERS: tuple[str, ...] = ("/usr/include/libelf.h",)
# a reproducible build: nothing of this host or this hour in the image
BUILD_STAMP = {"KBUILD_BUILD_USER": "flexlab", "KBUILD_BUILD_HOST": "flexlab",
               "KBUILD_BUILD_TIMESTAMP": "1970-01-01 00:00:00 UTC"}
PROGRESS_EVERY_S = 20.0
_OPTION = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.+)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")

Say = Callable[[str], None]


@dataclass(frozen=True)
class BuiltKernel:
    """A built kernel image and what it was built from."""

    image: Path
    release: str
    source: packages.DebPackage
    digest: str
    cached: bool

    def as_manifest(self) -> dict[str, object]:
        """The record kept in the node image's manifest (and hashed into its id)."""
        return {"kind": "flexlab", "source": self.source.as_manifest(), "digest": self.digest,
                "fragment_sha256": _sha256(FRAGMENT.read_bytes())}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_fragment(text: str) -> dict[str, str]:
    """``CONFIG_X`` -> value for each option line; ``=n`` lines map to "n". Comments and
    blank lines are skipped; anything else is a KernelBuildError naming the line."""
    options: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _OPTION.match(line)
        if match is None:
            raise KernelBuildError(f"{FRAGMENT.name} line {number}: {raw!r} is not "
                                   "CONFIG_NAME=value")
        options[match.group(1)] = match.group(2)
    if not options:
        raise KernelBuildError(f"{FRAGMENT.name} sets no option")
    return options


def config_values(text: str) -> dict[str, str]:
    """A kernel .config as ``CONFIG_X`` -> value, with "is not set" lines as "n"."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if match := _OPTION.match(line):
            values[match.group(1)] = match.group(2)
        elif match := _UNSET.match(line):
            values[match.group(1)] = "n"
    return values


def dropped_options(wanted: dict[str, str], config_text: str) -> list[str]:
    """Fragment lines the final .config does not honour, as "CONFIG_X=want (got …)".

    Kconfig silently drops an option whose dependencies are unmet; a kernel missing
    its NIC driver would only show as a VM that never gets an address, so the build
    stops here instead."""
    got = config_values(config_text)
    out = []
    for name, want in wanted.items():
        have = got.get(name, "n")
        if have != want:
            out.append(f"{name}={want} (got {have if name in got else 'absent'})")
    return out


def kernel_digest(source: packages.DebPackage) -> str:
    """The cache key: the source package, the fragment and this builder."""
    parts = [source.sha256, _sha256(FRAGMENT.read_bytes()),
             _sha256(Path(__file__).read_bytes())]
    return _sha256("\n".join(parts).encode())[:16]


def missing_tools() -> list[str]:
    """Build programs and headers this host lacks (scripts/setup-host.sh installs them)."""
    gone = [tool for tool in TOOLS if shutil.which(tool) is None]
    return gone + [header for header in HEADERS if not Path(header).exists()]


def _say(text: str) -> None:
    print(f"nodeimage: {text}", file=sys.stderr, flush=True)


def build_kernel(cache_dir: Path, *, jobs: int | None = None, say: Say = _say,
                 force: bool = False) -> BuiltKernel:
    """Build (or reuse) the kernel under ``cache_dir/kernel/<digest>/``."""
    source = packages.download(SOURCE_PACKAGE, cache_dir / "debs")
    digest = kernel_digest(source)
    final = cache_dir / "kernel" / digest
    final.parent.mkdir(parents=True, exist_ok=True)
    # one build at a time per cache: a second caller (another pytest worker) waits for
    # the first and then finds its result
    with (final.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "release").exists() and (final / "bzImage").exists() and not force:
            return BuiltKernel(final / "bzImage", (final / "release").read_text().strip(),
                               source, digest, cached=True)
        return _build(source, digest, final, jobs, say)


def _build(source: packages.DebPackage, digest: str, final: Path, jobs: int | None,
           say: Say) -> BuiltKernel:
    cache_dir = final.parent.parent
    if gone := missing_tools():
        raise KernelBuildError(f"building the node kernel needs {', '.join(gone)}: run "
                               "scripts/setup-host.sh (make setup), or build with "
                               "--kernel debian")
    wanted = parse_fragment(FRAGMENT.read_text())
    work = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=final.parent))
    try:
        tarball = _source_tarball(source, cache_dir)
        say(f"building the node kernel from {source.name} {source.version} "
            f"(a few minutes; log: {work / 'build.log'})")
        _run(["tar", "-xf", str(tarball), "-C", str(work)], work, "unpacking the source")
        tree = next(p for p in work.iterdir() if p.is_dir())
        log = work / "build.log"
        _make(tree, ["tinyconfig"], log)
        _run([str(tree / "scripts/kconfig/merge_config.sh"), "-m", ".config", str(FRAGMENT)],
             tree, "merging nodeimage/kernel.config")
        _make(tree, ["olddefconfig"], log)
        if dropped := dropped_options(wanted, (tree / ".config").read_text()):
            raise KernelBuildError("Kconfig dropped options of nodeimage/kernel.config "
                                   "(an unmet dependency; add it to the fragment): "
                                   + "; ".join(dropped))
        _make(tree, [f"-j{jobs or os.cpu_count() or 1}", "bzImage"], log, say=say)
        # stdout alone: a warning on stderr must not end up in the release string
        release = _run(["make", "-s", "kernelrelease"], tree, "reading the kernel release").strip()
        out = work / "out"
        out.mkdir()
        shutil.copyfile(tree / "arch/x86/boot/bzImage", out / "bzImage")
        shutil.copyfile(tree / ".config", out / "config")
        shutil.copyfile(log, out / "build.log")
        (out / "release").write_text(release + "\n")
        if final.exists():
            shutil.rmtree(final)
        out.rename(final)
    except KernelBuildError as exc:
        kept = final.parent / "failed-build.log"
        if (work / "build.log").exists():
            shutil.copyfile(work / "build.log", kept)
            raise KernelBuildError(f"{exc} (the whole log: {kept})") from None
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"built kernel {release} ({(final / 'bzImage').stat().st_size // 1024} KiB)")
    return BuiltKernel(final / "bzImage", release, source, digest, cached=False)


def _source_tarball(source: packages.DebPackage, cache_dir: Path) -> Path:
    tree = packages.extract(source, cache_dir)
    found = sorted((tree / "usr/src").glob("linux-source-*.tar.xz"))
    if len(found) != 1:
        raise KernelBuildError(f"{source.path.name} holds {len(found)} source tarballs "
                               "under usr/src, expected one")
    return found[0]


def _run(argv: list[str], cwd: Path, what: str) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise KernelBuildError(f"{what} failed (exit {proc.returncode}): "
                               f"{(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc.stdout


def _make(tree: Path, args: list[str], log: Path, *, say: Say | None = None) -> str:
    """Run make in ``tree``, appending its output to ``log``; with ``say``, a progress
    line every PROGRESS_EVERY_S (files compiled so far). Returns stdout."""
    env = {**os.environ, **BUILD_STAMP, "LC_ALL": "C"}
    argv = ["make", *args]
    lines: list[str] = []
    started = last = time.monotonic()
    with log.open("a") as sink:
        sink.write(f"$ {' '.join(argv)}\n")
        sink.flush()
        proc = subprocess.Popen(argv, cwd=tree, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        compiled = 0
        for line in proc.stdout:
            sink.write(line)
            lines.append(line)
            compiled += line.startswith("  CC ")
            if say is not None and time.monotonic() - last >= PROGRESS_EVERY_S:
                last = time.monotonic()
                say(f"kernel build: {compiled} files compiled, {last - started:.0f} s")
        rc = proc.wait()
    if rc != 0:
        tail = "".join(lines[-15:]).strip()
        raise KernelBuildError(f"`make {' '.join(args)}` failed (exit {rc}); its last "
                               f"lines:\n{tail}")
    return "".join(lines)
