"""Debian packages as build inputs: resolve, download with apt-get, unpack with dpkg-deb.

The image is built from Debian packages only, never from the host's installed
files, so the same package versions give the same image on any Debian host.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nodeimage.errors import PackageError

KERNEL_META_PACKAGE = "linux-image-amd64"
KERNEL_PACKAGE_RE = re.compile(r"^linux-image-6\.1\.\d+-\d+-amd64$")
BUSYBOX_PACKAGE = "busybox-static"


@dataclass(frozen=True)
class DebPackage:
    """One downloaded .deb: its name, exact version and content digest."""

    name: str
    version: str
    path: Path
    sha256: str

    def as_manifest(self) -> dict[str, str]:
        """Return the fields recorded in manifest.json and hashed into the image id."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256,
                "file": self.path.name}


def _run(argv: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(argv, cwd=cwd, check=False, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise PackageError(
            f"{argv[0]} is not installed; run the build on a Debian host (scripts/setup-host.sh)"
        ) from exc
    if proc.returncode != 0:
        raise PackageError(
            f"`{' '.join(argv)}` failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}; "
            "check that the apt index is current (apt-get update) and the name is right"
        )
    return proc.stdout


def resolve_kernel_package() -> str:
    """Return the 6.1 kernel package that Debian's ``linux-image-amd64`` currently points to."""
    out = _run(["apt-cache", "depends", KERNEL_META_PACKAGE])
    for line in out.splitlines():
        key, _, value = line.strip().partition(":")
        value = value.strip()
        if key == "Depends" and KERNEL_PACKAGE_RE.match(value):
            return value
    raise PackageError(
        f"{KERNEL_META_PACKAGE} does not depend on a linux-image-6.1.*-amd64 package; "
        "pass --kernel-package linux-image-6.1.0-N-amd64 explicitly"
    )


def candidate_versions(names: Sequence[str]) -> dict[str, str]:
    """Return apt's candidate version of each name (what ``apt-get download`` would fetch).

    One ``apt-cache policy`` for all of them: without apt's binary cache (Debian's
    container images turn it off) every apt-cache call re-reads the lists, ~0.6 s each."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    out = _run(["apt-cache", "policy", *wanted])
    found: dict[str, str] = {}
    current: str | None = None
    for line in out.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            current = line[:-1].split(":", 1)[0]  # "name:" (or "name:arch:")
        elif (current is not None and (match := _CANDIDATE.match(line))
              and match.group(1) != "(none)"):
            found[current] = match.group(1)
    missing = [name for name in wanted if name not in found]
    if missing:
        raise PackageError(f"apt has no candidate for {', '.join(missing)}; "
                           "run apt-get update or fix the name")
    return {name: found[name] for name in wanted}


_CANDIDATE = re.compile(r"^\s+Candidate:\s*(\S+)")


def candidate_version(name: str) -> str:
    """Return apt's candidate version of ``name``."""
    return candidate_versions([name])[name]


# What apt's answer depends on: its configuration, its package lists, what is installed.
APT_STATE_ROOTS = (Path("/etc/apt"), Path("/var/lib/apt/lists"), Path("/var/lib/dpkg/status"))


def apt_state(roots: Sequence[Path] = APT_STATE_ROOTS) -> str:
    """A digest of every file apt reads to pick a candidate (path, size, mtime): it changes
    with ``apt-get update``, a new source or pin, or an install, and not otherwise."""
    digest = hashlib.sha256(os.environ.get("APT_CONFIG", "").encode())
    for root in roots:
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for path in files:
            with contextlib.suppress(OSError):  # a list apt replaces while we look
                st = path.stat()
                if stat.S_ISREG(st.st_mode):
                    digest.update(f"{path} {st.st_size} {st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def remembered_candidates(names: Sequence[str], cache_dir: Path) -> dict[str, str]:
    """:func:`candidate_versions`, remembered in ``cache_dir`` for as long as
    :func:`apt_state` is unchanged: a cached image build asked apt every time, 10 s per
    lab before a VM could start."""
    memo = cache_dir / "apt-candidates.json"
    state = apt_state()
    known: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError, AttributeError):
        stored = json.loads(memo.read_text())
        if stored.get("apt_state") == state:
            known = {str(k): str(v) for k, v in stored["candidates"].items()}
    missing = [name for name in names if name not in known]
    if missing:
        known.update(candidate_versions(missing))
        cache_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(memo, json.dumps({"apt_state": state, "candidates": known},
                                           indent=1, sort_keys=True) + "\n")
    return {name: known[name] for name in names}


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` so a reader (another pytest worker) sees the old file or the new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _identity(path: Path) -> tuple[str, str, str]:
    """(Package, Version, sha256) of a .deb, remembered beside it (keyed by size and mtime):
    a cached build should not re-read 70 MB of kernel package, nor run dpkg-deb twice per
    package, every time."""
    st = path.stat()
    key = f"{st.st_size} {st.st_mtime_ns}"
    sidecar = path.with_name(path.name + ".flexlab.json")
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        stored = json.loads(sidecar.read_text())
        if stored["key"] == key and len(stored["sha256"]) == 64:
            return str(stored["package"]), str(stored["version"]), str(stored["sha256"])
    fields = _run(["dpkg-deb", "-f", str(path), "Package", "Version"])
    control = dict(line.split(": ", 1) for line in fields.splitlines() if ": " in line)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    package, version = control.get("Package", ""), control.get("Version", "")
    _write_atomically(sidecar, json.dumps({"key": key, "package": package, "version": version,
                                           "sha256": digest.hexdigest()}) + "\n")
    return package, version, digest.hexdigest()


def download_all(names: Sequence[str], cache_dir: Path) -> list[DebPackage]:
    """Fetch each of ``names`` at its candidate version into ``cache_dir`` unless already
    there, in the order given."""
    versions = remembered_candidates(names, cache_dir)
    return [_fetch(name, versions[name], cache_dir) for name in names]


def download(name: str, cache_dir: Path) -> DebPackage:
    """Fetch ``name`` at its candidate version into ``cache_dir`` unless already there."""
    return download_all([name], cache_dir)[0]


def _fetch(name: str, version: str, cache_dir: Path) -> DebPackage:
    cache_dir.mkdir(parents=True, exist_ok=True)
    for existing in sorted(cache_dir.glob(f"{name}_*.deb")):
        package, found, digest = _identity(existing)
        if (package, found) == (name, version):
            return DebPackage(name, version, existing, digest)
    _run(["apt-get", "download", f"{name}={version}"], cwd=cache_dir)
    for fetched in sorted(cache_dir.glob(f"{name}_*.deb")):
        package, found, digest = _identity(fetched)
        if (package, found) == (name, version):
            return DebPackage(name, version, fetched, digest)
    raise PackageError(f"apt-get download {name}={version} left no .deb in {cache_dir}")


def extract(pkg: DebPackage, cache_dir: Path) -> Path:
    """Unpack ``pkg`` with ``dpkg-deb -x`` (not installed) into a cached directory."""
    target = cache_dir / "extract" / f"{pkg.name}_{pkg.sha256[:16]}"
    done = target / ".flexlab-extracted"
    if done.exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    _run(["dpkg-deb", "-x", str(pkg.path), str(target)])
    done.write_text(pkg.sha256 + "\n")
    return target
