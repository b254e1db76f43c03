"""On-disk cache of kernel/initrd artifacts, fetched from the Control Plane once per process.

Files are stored by sha256 (``<dir>/<sha256>``) with an index mapping
artifact name to sha256 and ETag, so a restarted proxy revalidates with
If-None-Match instead of downloading hundreds of megabytes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bootproxy.httpboot.errors import ArtifactError
from bootproxy.httpboot.source import BootSource


@dataclass(frozen=True)
class CachedArtifact:
    """A cached artifact: its file, its sha256 (used as the HTTP ETag) and size."""

    path: Path
    sha256: str
    size: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ArtifactCache:
    """Name -> cached file; concurrent requests for one name share a single download."""

    def __init__(self, directory: Path, source: BootSource) -> None:
        self.directory = directory
        self.source = source
        self.fetches = 0
        self.hits = 0
        self._index_path = directory / "index.json"
        self._ready: dict[str, CachedArtifact] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        directory.mkdir(parents=True, exist_ok=True)

    def _load_index(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self._index_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save_index(self, index: dict[str, dict[str, str]]) -> None:
        tmp = self._index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
        os.replace(tmp, self._index_path)

    def expect(self, name: str, sha256: str | None) -> None:
        """The Control Plane says ``name`` now has ``sha256``: forget a cached copy that differs.

        The next :meth:`get` then revalidates with the Control Plane, so a
        kernel replaced under the same name is served fresh, not stale.
        """
        ready = self._ready.get(name)
        if sha256 and ready is not None and ready.sha256 != sha256.lower():
            del self._ready[name]

    async def get(self, name: str) -> CachedArtifact:
        """The cached artifact, downloading (or revalidating) it on first use in this process."""
        ready = self._ready.get(name)
        if ready is not None:
            self.hits += 1
            return ready
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            ready = self._ready.get(name)
            if ready is not None:
                self.hits += 1
                return ready
            ready = await self._fetch(name)
            self._ready[name] = ready
            return ready

    async def _fetch(self, name: str) -> CachedArtifact:
        index = self._load_index()
        known = index.get(name)
        known_path = self.directory / known["sha256"] if known else None
        etag = known.get("etag") if known and known_path and known_path.is_file() else None
        fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=".fetch-")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            self.fetches += 1
            new_etag = await self.source.fetch_artifact(name, tmp, etag)
            if new_etag is None and known and known_path is not None:
                return CachedArtifact(known_path, known["sha256"], known_path.stat().st_size)
            if new_etag is None:
                raise ArtifactError(f"Control Plane said artifact {name!r} is unchanged, "
                                    "but it is not cached; clear the cache index")
            sha = await asyncio.to_thread(_sha256, tmp)
            final = self.directory / sha
            os.replace(tmp, final)
            index[name] = {"sha256": sha, "etag": new_etag}
            self._save_index(index)
            return CachedArtifact(final, sha, final.stat().st_size)
        except OSError as exc:
            raise ArtifactError(f"cannot cache artifact {name!r} in {self.directory}: "
                                f"{exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
