"""The MAC filter: which machines this proxy serves, kept in sync with the Control Plane.

The Control Plane's `GET /api/v1/proxies/{name}/assignments` is long-polled
with `If-None-Match`; every good answer replaces the in-memory table and is
written to a disk cache atomically (temp file + rename). At start the cache is
loaded, so a restart during a Control Plane outage still boots known machines;
unknown machines are refused (fail closed). A malformed answer never replaces
the last good state; it is counted (`bootproxy_cp_sync_errors_total{kind="garbage"}`).
A Control Plane whose certificate does not verify against `--cp-ca` is treated
like one that is down (cache kept, unknown MACs refused), counted as
`kind="tls"` and reported with its reason (see bootproxy.cptls).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from bootproxy.cptls import CpTlsStatus, cp_transport_errors, tls_failure
from bootproxy.errors import AssignmentError
from bootproxy.logs import log_event
from bootproxy.macs import parse_mac
from bootproxy.metrics import Registry

__all__ = [
    "Assignment",
    "AssignmentStore",
    "AssignmentSync",
    "ControlPlaneClient",
    "normalise_mac",
    "parse_assignments",
]

_LOG = logging.getLogger("bootproxy.assignments")


def normalise_mac(mac: str) -> str:
    """Lower-case colon form (the API's canonical form); `AssignmentError` if it is not a MAC."""
    text = parse_mac(mac)
    if text is None:
        raise AssignmentError(f"{mac!r} is not a MAC address (expected 52:54:00:12:34:56)")
    return text


CONNECT_TIMEOUT_S = 5.0  # TCP connect and TLS handshake to the Control Plane


@dataclass(frozen=True)
class Assignment:
    """One machine the Control Plane assigned to a cluster this proxy serves."""

    mac: str
    cluster: str
    hostname: str
    role: str
    profile: str


def parse_assignments(doc: Any) -> tuple[str, dict[str, Assignment]]:
    """Validate an assignments document; return (revision, {mac: Assignment}).

    Raises `AssignmentError` on anything unexpected, so garbage never becomes state.
    """
    if not isinstance(doc, dict):
        raise AssignmentError("assignments answer is not a JSON object")
    revision = doc.get("revision")
    items = doc.get("assignments")
    if not isinstance(revision, str | int) or isinstance(revision, bool):
        raise AssignmentError("assignments answer has no string/int 'revision'")
    if not isinstance(items, list):
        raise AssignmentError("assignments answer has no 'assignments' list")
    table: dict[str, Assignment] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise AssignmentError(f"assignments[{index}] is not an object")
        fields = {}
        for key in ("mac", "cluster", "hostname", "role", "profile"):
            value = item.get(key)
            if not isinstance(value, str) or not value:
                raise AssignmentError(f"assignments[{index}].{key} is missing or not a string")
            fields[key] = value
        fields["mac"] = normalise_mac(fields["mac"])
        if fields["mac"] in table:
            raise AssignmentError(f"assignments list names {fields['mac']} twice")
        table[fields["mac"]] = Assignment(**fields)
    return str(revision), table


class AssignmentStore:
    """The current MAC table, its revision/ETag, the disk cache, and when it was last synced.

    Reads (`served`, `get`) are lock-free dict lookups: the DHCP path calls them
    for every packet. The last sync is kept twice: on the monotonic `clock` for the
    age /healthz reports, and as wall time for `bootproxy_last_sync_timestamp_seconds`
    (a timestamp, so an alert computes `time() - x` and a restart does not reset it).
    """

    def __init__(
        self,
        registry: Registry,
        cache_path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.cache_path = cache_path
        self.clock = clock
        self.wall = wall
        self.revision: str | None = None
        self.etag: str | None = None
        self._table: dict[str, Assignment] = {}
        self._last_contact: float | None = None
        self._last_sync_time = 0.0
        self.loaded = False
        registry.gauge("bootproxy_last_sync_timestamp_seconds", lambda: self._last_sync_time)
        registry.gauge("bootproxy_assignments", lambda: float(len(self._table)))

    def served(self, mac: str) -> bool:
        """True when `mac` (colon form, any case) is assigned to this proxy; fail closed."""
        return mac.lower() in self._table

    def get(self, mac: str) -> Assignment | None:
        """The assignment for `mac`, or None."""
        return self._table.get(mac.lower())

    def macs(self) -> list[str]:
        """Every served MAC, sorted."""
        return sorted(self._table)

    def sync_age(self) -> float | None:
        """Seconds since the Control Plane last answered sanely (None: never this run)."""
        if self._last_contact is None:
            return None
        return max(0.0, self.clock() - self._last_contact)

    def mark_contact(self) -> None:
        """Record a sane answer (200 with a valid body, or 304)."""
        self._last_contact = self.clock()
        self._last_sync_time = self.wall()

    def replace(self, doc: Any, etag: str | None) -> None:
        """Validate `doc`, swap it in and persist it; garbage raises and changes nothing."""
        revision, table = parse_assignments(doc)
        self._table = table
        self.revision = revision
        self.etag = etag
        self.loaded = True
        self.mark_contact()
        if self.cache_path is not None:
            self._write_cache(doc, etag)
        log_event(_LOG, "assignments_updated", revision=revision, etag=etag, count=len(table))

    def load_cache(self) -> bool:
        """Load the last good state from the cache file; False if there is none or it is bad."""
        if self.cache_path is None or not self.cache_path.exists():
            return False
        try:
            saved = json.loads(self.cache_path.read_text())
            revision, table = parse_assignments(saved.get("document"))
        except (OSError, ValueError, AttributeError, AssignmentError) as exc:
            self.registry.inc("bootproxy_cp_sync_errors_total", kind="bad_cache")
            log_event(
                _LOG, "assignments_cache_unusable", logging.WARNING,
                path=str(self.cache_path), error=str(exc),
            )
            return False
        self._table = table
        self.revision = revision
        etag = saved.get("etag")
        self.etag = etag if isinstance(etag, str) else None
        self.loaded = True
        log_event(
            _LOG, "assignments_cache_loaded", path=str(self.cache_path),
            revision=revision, count=len(table),
        )
        return True

    def load_file(self, path: Path) -> None:
        """Load a static assignments document (JSON or YAML, the API's shape); no CP needed."""
        try:
            text = path.read_text()
        except OSError as exc:
            raise AssignmentError(f"cannot read assignments file {path}: {exc.strerror}") from exc
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise AssignmentError(f"assignments file {path} is not YAML/JSON: {exc}") from exc
        revision, table = parse_assignments(doc)
        self._table = table
        self.revision = revision
        self.loaded = True
        self.mark_contact()

    def _write_cache(self, doc: Any, etag: str | None) -> None:
        assert self.cache_path is not None
        payload = json.dumps({"etag": etag, "saved_at": time.time(), "document": doc})
        directory = self.cache_path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".assignments-", dir=directory)
            try:
                with os.fdopen(fd, "w") as fh:
                    fh.write(payload)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.cache_path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            self.registry.inc("bootproxy_cp_sync_errors_total", kind="cache_write")
            log_event(
                _LOG, "assignments_cache_write_failed", logging.ERROR,
                path=str(self.cache_path), error=str(exc),
            )


@dataclass(frozen=True)
class FetchResult:
    """One assignments poll: HTTP status, parsed body (200 only) and the ETag.

    `status` is -1 when the CP answered 200 with a body that is not JSON.
    """

    status: int
    body: Any
    etag: str | None


class ControlPlaneClient:
    """The proxy's calls to the Control Plane (assignments, heartbeat, conflicts), with a token.

    `verify` is the TLS context for an https URL (`bootproxy.cptls.client_context`);
    the default verifies against the system store.
    """

    def __init__(
        self,
        base_url: str,
        proxy_name: str,
        token: str,
        timeout: float = 10.0,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.proxy_name = proxy_name
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            verify=verify,
        )

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def fetch_assignments(self, etag: str | None, wait: float) -> FetchResult:
        """GET assignments, long-polling up to `wait` s when `etag` is known."""
        headers = {"If-None-Match": etag} if etag else {}
        params = {"wait": str(int(wait))} if etag and wait > 0 else {}
        # the long poll stretches only the read: a Control Plane that cannot be reached
        # (a WAN dropping the port) is known after the connect timeout, not the poll window
        read = self.timeout + (wait if params else 0.0)
        resp = await self._http.get(
            f"/api/v1/proxies/{self.proxy_name}/assignments",
            headers=headers,
            params=params,
            timeout=httpx.Timeout(read, connect=min(self.timeout, CONNECT_TIMEOUT_S)),
        )
        if resp.status_code == 304:
            return FetchResult(304, None, etag)
        if resp.status_code != 200:
            return FetchResult(resp.status_code, resp.text[:200], None)
        try:
            body = resp.json()
        except ValueError:
            body = resp.text[:200]
            return FetchResult(-1, body, None)
        return FetchResult(200, body, resp.headers.get("etag"))

    async def heartbeat(self, version: str, segments: list[str]) -> int:
        """POST a heartbeat; returns the HTTP status."""
        resp = await self._http.post(
            f"/api/v1/proxies/{self.proxy_name}/heartbeat",
            json={"version": version, "segments": segments},
        )
        return resp.status_code

    async def report_boot_arch(self, mac: str, arch: int, segment: str) -> int:
        """POST the PXE architecture a served MAC boots as; returns the HTTP status."""
        resp = await self._http.post(f"/api/v1/machines/{mac}/boot-arch",
                                     json={"pxe_arch": arch, "segment": segment})
        return resp.status_code

    async def report_conflict(self, doc: dict[str, Any]) -> int:
        """POST a conflict report (`{mac, other_server, segment, seen_at}`); returns the status."""
        resp = await self._http.post("/api/v1/conflicts", json=doc)
        return resp.status_code


@dataclass(eq=False)
class AssignmentSync:
    """Keeps an `AssignmentStore` current: long-poll loop with backoff, plus heartbeats.

    A dataclass: its constructor only stores what it is given, plus the
    first-sync event and the CP TLS status it reports through `registry`.
    """

    store: AssignmentStore
    client: ControlPlaneClient
    registry: Registry
    _: KW_ONLY
    wait: float = 30.0
    heartbeat_interval: float = 15.0
    version: str = "0"
    segments: list[str] = field(default_factory=list)
    max_backoff: float = 30.0
    first_sync: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    tls: CpTlsStatus = field(init=False)

    def __post_init__(self) -> None:
        self.tls = CpTlsStatus(self.registry)

    def _failed(self, exc: BaseException) -> str:
        """Sort a transport error into `tls` (with its reason logged) or `unreachable`."""
        failure = tls_failure(exc)
        if failure is not None:
            self.tls.failed(failure, self.client.base_url)
            return "tls"
        return "unreachable"

    async def sync_once(self) -> bool:
        """One poll; True when the CP answered sanely (200 valid or 304)."""
        try:
            result = await self.client.fetch_assignments(self.store.etag, self.wait)
        except cp_transport_errors() as exc:
            kind = self._failed(exc)
            self.registry.inc("bootproxy_cp_sync_errors_total", kind=kind)
            if kind == "unreachable":
                log_event(_LOG, "cp_unreachable", logging.WARNING, error=repr(exc))
            return False
        self.tls.ok()
        if result.status == 304:
            self.store.mark_contact()
            return True
        if result.status == 200:
            try:
                self.store.replace(result.body, result.etag)
            except AssignmentError as exc:
                self.registry.inc("bootproxy_cp_sync_errors_total", kind="garbage")
                log_event(_LOG, "cp_garbage", logging.ERROR, error=str(exc))
                return False
            return True
        kind = "garbage" if result.status == -1 else "http_error"
        self.registry.inc("bootproxy_cp_sync_errors_total", kind=kind)
        log_event(
            _LOG, "cp_bad_answer", logging.WARNING, status=result.status, body=str(result.body)
        )
        return False

    async def run(self) -> None:
        """Poll forever; errors back off exponentially (1 s doubling to `max_backoff`)."""
        backoff = 1.0
        while True:
            ok = await self.sync_once()
            if ok:
                self.first_sync.set()
                backoff = 1.0
                if self.wait <= 0:
                    await asyncio.sleep(1.0)  # no long-poll: plain periodic refresh
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def heartbeats(self) -> None:
        """Send a heartbeat every `heartbeat_interval` s; failures are counted, never fatal."""
        while True:
            try:
                status = await self.client.heartbeat(self.version, self.segments)
                result = "ok" if status == 200 else f"http_{status}"
            except cp_transport_errors() as exc:
                result = self._failed(exc)
            self.registry.inc("bootproxy_heartbeats_total", result=result)
            await asyncio.sleep(self.heartbeat_interval)

