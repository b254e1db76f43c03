"""What the HTTP boot server needs from the Control Plane, as a protocol, plus an httpx adapter.

The app injects any object with these two coroutines; tests inject a fake.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Protocol

from bootproxy.httpboot.errors import ArtifactError, BootDataError, ControlPlaneUnavailable
from bootproxy.httpboot.script import BootData


class BootSource(Protocol):
    """The Control Plane as the HTTP boot server sees it."""

    async def boot_data(self, mac: str) -> BootData | None:
        """Boot data for ``mac`` (lower-case colon form); None if this proxy does not serve it."""
        ...

    async def fetch_artifact(self, name: str, dest: Path, etag: str | None) -> str | None:
        """Write artifact ``name`` to ``dest`` and return its ETag.

        When ``etag`` is given and still current, return None without writing
        (HTTP 304).  Raise :class:`ArtifactError` when it cannot be fetched.
        """
        ...


class ControlPlaneSource:
    """:class:`BootSource` over the Control Plane API v1 with httpx (Debian: python3-httpx).

    ``base_url`` is the Control Plane's root URL, ``token`` a proxy token,
    ``verify`` the TLS context for an https URL (the proxy's ``--cp-ca``).
    """

    def __init__(self, base_url: str, token: str, timeout: float = 10.0,
                 verify: ssl.SSLContext | bool = True) -> None:
        import httpx  # imported here so the server itself needs only the stdlib

        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, verify=verify,
            headers={"Authorization": f"Bearer {token}"})

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()

    async def boot_data(self, mac: str) -> BootData | None:
        """``GET /api/v1/machines/{mac}/boot``; 403/404 mean "not ours" and give None.

        An unreachable Control Plane, one that answers 5xx, or one that answers something
        that is not JSON, raises ControlPlaneUnavailable: the machine is told to retry,
        never given a guess.
        """
        from bootproxy.cptls import cp_transport_errors

        try:
            response = await self._client.get(f"/api/v1/machines/{mac}/boot")
        except cp_transport_errors() as exc:
            raise ControlPlaneUnavailable(f"Control Plane unreachable: {exc!r}") from exc
        if response.status_code in (403, 404):
            return None
        if response.status_code >= 500:
            # the Control Plane (or a gateway before it) is failing, not saying no: a
            # known machine is told to retry, as when it cannot be reached at all
            raise ControlPlaneUnavailable(f"Control Plane answered {response.status_code} "
                                          f"for the boot data of {mac}")
        if response.status_code != 200:
            raise BootDataError(f"Control Plane answered {response.status_code} for the boot "
                                f"data of {mac}: {response.text[:200]}")
        try:
            body = response.json()
        except ValueError:
            raise ControlPlaneUnavailable(
                f"Control Plane boot data for {mac} is not JSON: {response.text[:80]!r}"
            ) from None
        try:
            return BootData(mac=mac, hostname=str(body["hostname"]), kernel=str(body["kernel"]),
                            initrd=str(body["initrd"]), cmdline=str(body["cmdline"]),
                            kernel_sha256=body.get("kernel_sha256"),
                            initrd_sha256=body.get("initrd_sha256"))
        except KeyError as exc:
            raise BootDataError(f"Control Plane boot data for {mac} lacks {exc}") from None

    async def fetch_artifact(self, name: str, dest: Path, etag: str | None) -> str | None:
        """``GET /api/v1/artifacts/{name}``, streamed to ``dest``; conditional on ``etag``."""
        headers = {"If-None-Match": etag} if etag else {}
        async with self._client.stream("GET", f"/api/v1/artifacts/{name}",
                                       headers=headers) as response:
            if response.status_code == 304:
                return None
            if response.status_code != 200:
                raise ArtifactError(f"Control Plane answered {response.status_code} for "
                                    f"artifact {name!r}")
            with dest.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
            return response.headers.get("etag") or ""


class NoControlPlane:
    """A BootSource that serves no machine and has no artifacts (files-only mode)."""

    async def boot_data(self, mac: str) -> BootData | None:
        """No machine is served without a Control Plane."""
        return None

    async def fetch_artifact(self, name: str, dest: Path, etag: str | None) -> str | None:
        """There are no artifacts without a Control Plane."""
        raise ArtifactError(f"no Control Plane configured (--cp-url); cannot fetch {name!r}")
