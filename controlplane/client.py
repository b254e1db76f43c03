"""A small typed, synchronous client for the Control Plane API.

Used by the harness and the tests; it speaks exactly the documented API, so
it also shows a Boot Proxy or node agent author what the calls look like.
Every non-2xx answer raises ApiError carrying the status and the server's
`{"error", "detail"}` body.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from .errors import ControlPlaneError


def verify_context(verify: bool | str | Path) -> bool | ssl.SSLContext:
    """httpx `verify` for a lab: a CA file path becomes a context trusting only that CA."""
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

    # -- meta ---------------------------------------------------------------

    def healthz(self) -> dict[str, str]:
        """`GET /healthz`."""
        return dict(self._json("GET", "/healthz"))

    def time(self) -> float:
        """The Control Plane's clock (`GET /api/v1/time`)."""
        return float(self._json("GET", "/api/v1/time")["unix"])

    # -- admin --------------------------------------------------------------

    def create_cluster(self, name: str, expected_nodes: int, *, mode: str = "hybrid",
                       environment: str = "test") -> dict[str, Any]:
        """Create a cluster."""
        return dict(self._json("POST", "/api/v1/clusters", json={
            "name": name, "mode": mode, "expected_nodes": expected_nodes,
            "environment": environment}))

    def get_cluster(self, name: str) -> dict[str, Any]:
        """A cluster with `status` (phase, ready, expected, missing)."""
        return dict(self._json("GET", f"/api/v1/clusters/{name}"))

    def clusters(self) -> list[dict[str, Any]]:
        """Every cluster."""
        return list(self._json("GET", "/api/v1/clusters"))

    def upload_artifact(self, name: str, data: bytes | Path) -> dict[str, Any]:
        """Upload kernel/initrd bytes (or a file's contents)."""
        content = data.read_bytes() if isinstance(data, Path) else data
        return dict(self._json("POST", f"/api/v1/artifacts/{name}", content=content,
                               headers={"Content-Type": "application/octet-stream"}))

    def download_artifact(self, name: str) -> bytes:
        """Artifact bytes (proxy or admin token)."""
        return self.request("GET", f"/api/v1/artifacts/{name}").content

    def create_profile(self, name: str, kernel: str, initrd: str,
                       cmdline: str) -> dict[str, Any]:
        """Create or replace a boot profile."""
        return dict(self._json("POST", "/api/v1/profiles", json={
            "name": name, "kernel": kernel, "initrd": initrd, "cmdline": cmdline}))

    def create_machine(self, mac: str, cluster: str, hostname: str, profile: str, *,
                       role: str = "worker") -> dict[str, Any]:
        """Define a machine (state Pending)."""
        return dict(self._json("POST", "/api/v1/machines", json={
            "mac": mac, "cluster": cluster, "role": role, "hostname": hostname,
            "profile": profile}))

    def get_machine(self, mac: str) -> dict[str, Any]:
        """A machine with state, reasons and facts."""
        return dict(self._json("GET", f"/api/v1/machines/{mac}"))

    def machines(self, cluster: str | None = None) -> list[dict[str, Any]]:
        """Every machine, or one cluster's."""
        params = {"cluster": cluster} if cluster else None
        return list(self._json("GET", "/api/v1/machines", params=params))

    def register_proxy(self, name: str, clusters: list[str],
                       segments: list[str] | None = None) -> str:
        """Register a Boot Proxy; return its token."""
        answer = self._json("POST", "/api/v1/proxies", json={
            "name": name, "clusters": clusters, "segments": segments or []})
        return str(answer["token"])

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        """The event log after sequence number `since`."""
        return list(self._json("GET", "/api/v1/events", params={"since": since}))

    def state(self) -> dict[str, Any]:
        """Every object the Control Plane holds (admin)."""
        return dict(self._json("GET", "/api/v1/state"))

    def conflicts(self) -> list[dict[str, Any]]:
        """Every conflict report (admin)."""
        return list(self._json("GET", "/api/v1/conflicts"))

    def set_fault(self, endpoint: str, *, latency_ms: int = 0, error_rate: float = 0.0,
                  down: bool = False, wrong_answer: bool = False) -> dict[str, Any]:
        """Switch on a fault for one route name (or `*`)."""
        return dict(self._json("PUT", "/api/v1/faults", json={
            "endpoint": endpoint, "latency_ms": latency_ms, "error_rate": error_rate,
            "down": down, "wrong_answer": wrong_answer}))

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

    def boot(self, mac: str) -> dict[str, Any]:
        """Boot data for a MAC; mints a join token (proxy token)."""
        return dict(self._json("GET", f"/api/v1/machines/{mac}/boot"))

    def register_node(self, mac: str, facts: dict[str, Any]) -> dict[str, Any]:
        """Phone home with hardware facts (join token)."""
        return dict(self._json("POST", "/api/v1/nodes/register",
                               json={"mac": mac, "facts": facts}))

    def node_ready(self, mac: str) -> dict[str, Any]:
        """Report a registered node ready (node token)."""
        return dict(self._json("POST", f"/api/v1/nodes/{mac}/ready"))

    def report_boot_arch(self, mac: str, pxe_arch: int, segment: str = "") -> dict[str, Any]:
        """Report the PXE architecture a served MAC booted as (proxy token)."""
        return dict(self._json("POST", f"/api/v1/machines/{mac}/boot-arch",
                               json={"pxe_arch": pxe_arch, "segment": segment}))

    def report_conflict(self, mac: str, other_server: str, segment: str,
                        seen_at: float) -> dict[str, Any]:
        """Report another ProxyDHCP answering a served MAC (proxy token)."""
        return dict(self._json("POST", "/api/v1/conflicts", json={
            "mac": mac, "other_server": other_server, "segment": segment,
            "seen_at": seen_at}))
