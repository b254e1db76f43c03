"""A small typed, synchronous client for the Control Plane API.

Used by the harness and the tests; it speaks exactly the documented API, so
it also shows a Boot Proxy or node agent author what the calls look like.
Every non-2xx answer raises ApiError carrying the status and the server's
`{"error", "detail"}` body. Answers come back as the API's own pydantic models
(controlplane/models.py), so a caller's typo is a mypy error and an answer that
does not fit the documented shape (a Control Plane that lies) is a clear
BadAnswer, not a KeyError three calls later.
"""

from __future__ import annotations

import functools
import ssl
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from .errors import ControlPlaneError
from .models import (
    ArtifactOut,
    BootData,
    ClusterOut,
    ConflictOut,
    Event,
    Faults,
    Health,
    MachineOut,
    ProfileOut,
    ProxyToken,
    RegisterOut,
    TimeOut,
)

Model = TypeVar("Model", bound=BaseModel)


@functools.cache
def default_trust() -> ssl.SSLContext:
    """httpx's own default verification (its CA bundle), built once per process.

    httpx builds this context for every client made with ``verify=True``, even for an
    ``http://`` URL, and building it parses the whole CA bundle. The
    harness makes a client per Control Plane token and per readiness poll, every lab, on
    a suite that is CPU-bound; one shared context (safe across threads) trusts the same."""
    return httpx.create_ssl_context()


def verify_context(verify: bool | str | Path) -> bool | ssl.SSLContext:
    """httpx `verify` for a lab: a CA file path becomes a context trusting only that CA;
    True is httpx's default trust, shared (:func:`default_trust`)."""
    if verify is True:
        return default_trust()
    if isinstance(verify, bool):
        return verify
    return ssl.create_default_context(cafile=str(verify))


class ApiError(ControlPlaneError):
    """The Control Plane answered with an error status; `body` holds its JSON answer."""

    def __init__(self, status: int, body: Any, method: str, url: str) -> None:
        detail = body.get("detail") if isinstance(body, dict) else body
        error = body.get("error") if isinstance(body, dict) else "error"
        super().__init__(f"{method} {url} → {status} {error}: {detail}")
        self.status = status
        self.body = body


@functools.cache
def _list_of(model: type[BaseModel]) -> TypeAdapter[Any]:
    """A validator for a JSON list of ``model``, built once per model (building one
    compiles a schema: too slow to repeat on every poll of the event log)."""
    return TypeAdapter(list[model])  # type: ignore[valid-type]


class BadAnswer(ControlPlaneError):
    """A 2xx answer whose body is not the documented model (a lying or broken server)."""

    def __init__(self, method: str, url: str, expected: str, error: ValidationError) -> None:
        problems = error.errors()
        where = ".".join(str(part) for part in problems[0]["loc"]) if problems else ""
        why = problems[0]["msg"] if problems else str(error)
        super().__init__(f"{method} {url}: the answer is not a {expected} "
                         f"({where or 'body'}: {why})")
        self.validation = error


class ControlPlaneClient:
    """Sync httpx client; `token` is sent as the bearer token on every call."""

    def __init__(self, base_url: str, token: str | None = None, *,
                 verify: bool | str | Path = True, timeout: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._verify = verify
        self._timeout = timeout
        self.http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout,
            verify=verify_context(verify),
        )

    def with_token(self, token: str) -> ControlPlaneClient:
        """A second client on the same server with another token (proxy, join, node)."""
        return ControlPlaneClient(self.base_url, token, verify=self._verify,
                                  timeout=self._timeout)

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> ControlPlaneClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; raise ApiError on an error status (304 is not an error)."""
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            raise ApiError(response.status_code, body, method, path)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def _one(self, model: type[Model], method: str, path: str, **kwargs: Any) -> Model:
        """One answer parsed as ``model``; BadAnswer when it does not fit."""
        body = self._json(method, path, **kwargs)
        try:
            return model.model_validate(body)
        except ValidationError as error:
            raise BadAnswer(method, path, model.__name__, error) from error

    def _many(self, model: type[Model], method: str, path: str, **kwargs: Any) -> list[Model]:
        """A JSON list answer parsed as ``model`` items; BadAnswer when one does not fit."""
        body = self._json(method, path, **kwargs)
        try:
            return _list_of(model).validate_python(body)
        except ValidationError as error:
            raise BadAnswer(method, path, f"list of {model.__name__}", error) from error

    # -- meta ---------------------------------------------------------------

    def healthz(self) -> Health:
        """`GET /healthz`."""
        return self._one(Health, "GET", "/healthz")

    def time(self) -> float:
        """The Control Plane's clock (`GET /api/v1/time`)."""
        return self._one(TimeOut, "GET", "/api/v1/time").unix

    # -- admin --------------------------------------------------------------

    def create_cluster(self, name: str, expected_nodes: int, *, mode: str = "hybrid",
                       environment: str = "test") -> ClusterOut:
        """Create a cluster."""
        return self._one(ClusterOut, "POST", "/api/v1/clusters", json={
            "name": name, "mode": mode, "expected_nodes": expected_nodes,
            "environment": environment})

    def get_cluster(self, name: str) -> ClusterOut:
        """A cluster with `status` (phase, ready, expected, missing)."""
        return self._one(ClusterOut, "GET", f"/api/v1/clusters/{name}")

    def clusters(self) -> list[ClusterOut]:
        """Every cluster."""
        return self._many(ClusterOut, "GET", "/api/v1/clusters")

    def upload_artifact(self, name: str, data: bytes | Path) -> ArtifactOut:
        """Upload kernel/initrd bytes (or a file's contents)."""
        content = data.read_bytes() if isinstance(data, Path) else data
        return self._one(ArtifactOut, "POST", f"/api/v1/artifacts/{name}", content=content,
                         headers={"Content-Type": "application/octet-stream"})

    def download_artifact(self, name: str) -> bytes:
        """Artifact bytes (proxy or admin token)."""
        return self.request("GET", f"/api/v1/artifacts/{name}").content

    def create_profile(self, name: str, kernel: str, initrd: str,
                       cmdline: str) -> ProfileOut:
        """Create or replace a boot profile."""
        return self._one(ProfileOut, "POST", "/api/v1/profiles", json={
            "name": name, "kernel": kernel, "initrd": initrd, "cmdline": cmdline})

    def create_machine(self, mac: str, cluster: str, hostname: str, profile: str, *,
                       role: str = "worker") -> MachineOut:
        """Define a machine (state Pending)."""
        return self._one(MachineOut, "POST", "/api/v1/machines", json={
            "mac": mac, "cluster": cluster, "role": role, "hostname": hostname,
            "profile": profile})

    def get_machine(self, mac: str) -> MachineOut:
        """A machine with state, reasons and facts."""
        return self._one(MachineOut, "GET", f"/api/v1/machines/{mac}")

    def machines(self, cluster: str | None = None) -> list[MachineOut]:
        """Every machine, or one cluster's."""
        params = {"cluster": cluster} if cluster else None
        return self._many(MachineOut, "GET", "/api/v1/machines", params=params)

    def register_proxy(self, name: str, clusters: list[str],
                       segments: list[str] | None = None) -> str:
        """Register a Boot Proxy; return its token."""
        return self._one(ProxyToken, "POST", "/api/v1/proxies", json={
            "name": name, "clusters": clusters, "segments": segments or []}).token

    def events(self, since: int = 0) -> list[Event]:
        """The event log after sequence number `since`."""
        return self._many(Event, "GET", "/api/v1/events", params={"since": since})

    def state(self) -> dict[str, Any]:
        """Every object the Control Plane holds (admin): a raw dump, with no model."""
        return dict(self._json("GET", "/api/v1/state"))

    def conflicts(self) -> list[ConflictOut]:
        """Every conflict report (admin)."""
        return self._many(ConflictOut, "GET", "/api/v1/conflicts")

    def set_fault(self, endpoint: str, *, latency_ms: int = 0, error_rate: float = 0.0,
                  down: bool = False, wrong_answer: bool = False) -> Faults:
        """Switch on a fault for one route name (or `*`)."""
        return self._one(Faults, "PUT", "/api/v1/faults", json={
            "endpoint": endpoint, "latency_ms": latency_ms, "error_rate": error_rate,
            "down": down, "wrong_answer": wrong_answer})

    def clear_faults(self) -> None:
        """Remove every fault."""
        self.request("DELETE", "/api/v1/faults")

    # -- proxy and node calls -----------------------------------------------

    def heartbeat(self, proxy: str, version: str, segments: list[str]) -> None:
        """A proxy's heartbeat (proxy token)."""
        self.request("POST", f"/api/v1/proxies/{proxy}/heartbeat",
                     json={"version": version, "segments": segments})

    def assignments(self, proxy: str, etag: str | None = None,
                    wait: float = 0.0) -> tuple[int, dict[str, Any] | None, str]:
        """(status, document or None on 304, ETag); long-polls when `etag` and `wait` given."""
        headers = {"If-None-Match": etag} if etag else {}
        params = {"wait": wait} if wait else None
        timeout = max(self.http.timeout.read or 10.0, wait + 10.0)
        response = self.request("GET", f"/api/v1/proxies/{proxy}/assignments",
                                headers=headers, params=params, timeout=timeout)
        doc = response.json() if response.status_code == 200 else None
        return response.status_code, doc, response.headers.get("etag", "")

    def boot(self, mac: str) -> BootData:
        """Boot data for a MAC; mints a join token (proxy token)."""
        return self._one(BootData, "GET", f"/api/v1/machines/{mac}/boot")

    def register_node(self, mac: str, facts: dict[str, Any]) -> RegisterOut:
        """Phone home with hardware facts (join token)."""
        return self._one(RegisterOut, "POST", "/api/v1/nodes/register",
                         json={"mac": mac, "facts": facts})

    def node_ready(self, mac: str) -> MachineOut:
        """Report a registered node ready (node token)."""
        return self._one(MachineOut, "POST", f"/api/v1/nodes/{mac}/ready")

    def report_boot_arch(self, mac: str, pxe_arch: int, segment: str = "") -> MachineOut:
        """Report the PXE architecture a served MAC booted as (proxy token)."""
        return self._one(MachineOut, "POST", f"/api/v1/machines/{mac}/boot-arch",
                         json={"pxe_arch": pxe_arch, "segment": segment})

    def report_conflict(self, mac: str, other_server: str, segment: str,
                        seen_at: float) -> ConflictOut:
        """Report another ProxyDHCP answering a served MAC (proxy token)."""
        return self._one(ConflictOut, "POST", "/api/v1/conflicts", json={
            "mac": mac, "other_server": other_server, "segment": segment,
            "seen_at": seen_at})
