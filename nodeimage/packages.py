"""Debian packages as build inputs: resolve, download with apt-get, unpack with dpkg-deb.

The image is built from Debian packages only, never from the host's installed
files, so the same package versions give the same image on any Debian host.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
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


def candidate_version(name: str) -> str:
    """Return apt's candidate version of ``name`` (what ``apt-get download`` would fetch)."""
    out = _run(["apt-cache", "policy", name])
    match = re.search(r"^\s*Candidate:\s*(\S+)", out, re.MULTILINE)
    if not match or match.group(1) == "(none)":
        raise PackageError(f"apt has no candidate for {name}; run apt-get update or fix the name")
    return match.group(1)


def _sha256(path: Path) -> str:
    """Digest of a .deb, remembered beside it (keyed by size and mtime): a cached build
    should not re-read 70 MB of kernel package every time."""
    st = path.stat()
    key = f"{st.st_size} {st.st_mtime_ns}"
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.exists():
        stored_key, _, stored = sidecar.read_text().strip().rpartition(" ")
        if stored_key == key and len(stored) == 64:
            return stored
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    sidecar.write_text(f"{key} {digest.hexdigest()}\n")
    return digest.hexdigest()


def deb_field(path: Path, field: str) -> str:
    """Read one control field (``Package``, ``Version``) from a .deb file."""
    return _run(["dpkg-deb", "-f", str(path), field]).strip()


def download(name: str, cache_dir: Path) -> DebPackage:
    """Fetch ``name`` at its candidate version into ``cache_dir`` unless already there."""
    version = candidate_version(name)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for existing in sorted(cache_dir.glob(f"{name}_*.deb")):
        if deb_field(existing, "Package") == name and deb_field(existing, "Version") == version:
            return DebPackage(name, version, existing, _sha256(existing))
    _run(["apt-get", "download", f"{name}={version}"], cwd=cache_dir)
    for fetched in sorted(cache_dir.glob(f"{name}_*.deb")):
        if deb_field(fetched, "Version") == version:
            return DebPackage(name, version, fetched, _sha256(fetched))
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
