"""The HTTP boot server on loopback: scripts, files, ranges, refusals, artifacts, concurrency."""

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from bootproxy.httpboot import BootData, HttpBootConfig, HttpBootServer

pytestmark = pytest.mark.unit

EFI = os.urandom(200_000)
KERNEL = os.urandom(300_000)
SERVED = "52:54:00:00:00:01"


class FakeControlPlane:
    """A BootSource serving one MAC and two artifacts, counting calls."""

    def __init__(self) -> None:
        self.boot_calls: list[str] = []
        self.artifact_calls: list[tuple[str, str | None]] = []
        self.artifacts = {"vmlinuz": KERNEL, "initrd.img": b"initrd-bytes"}

    async def boot_data(self, mac: str) -> BootData | None:
        self.boot_calls.append(mac)
        if mac != SERVED:
            return None
        return BootData(mac=mac, hostname="node-1", kernel="vmlinuz", initrd="initrd.img",
                        cmdline="console=ttyS0 token=t0k")

    async def fetch_artifact(self, name: str, dest: Path, etag: str | None) -> str | None:
        self.artifact_calls.append((name, etag))
        await asyncio.sleep(0.05)  # a slow Control Plane, so concurrent requests overlap
        body = self.artifacts[name]
        current = '"' + hashlib.sha256(body).hexdigest() + '"'
        if etag == current:
            return None
        dest.write_bytes(body)
        return current


def run(coro: Coroutine[object, object, None]) -> None:
    """Run one test coroutine on a fresh loop (no pytest-asyncio dependency)."""
    asyncio.run(asyncio.wait_for(coro, 60))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "ipxe.efi").write_bytes(EFI)
    (boot / "empty").write_bytes(b"")
    (tmp_path / "secret").write_text("outside")
    os.symlink(tmp_path / "secret", boot / "link-out")
    return boot


@asynccontextmanager
async def serving(root: Path, cp: FakeControlPlane, **kw: object
                  ) -> AsyncIterator[tuple[HttpBootServer, str]]:
    cfg = HttpBootConfig(root=root, cache_dir=root.parent / "cache", host="127.0.0.1", port=0)
    srv = HttpBootServer(cfg, cp, **kw)  # type: ignore[arg-type]
    await srv.start()
    try:
        host, port = srv.address
        yield srv, f"http://{host}:{port}"
    finally:
        await srv.stop()


async def raw_request(url: str, request: bytes) -> bytes:
    """Send bytes as-is (httpx would normalise '..' away) and read until close."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()


def test_script_for_served_mac(root: Path) -> None:
    async def go() -> None:
        cp = FakeControlPlane()
        async with serving(root, cp) as (srv, url), httpx.AsyncClient() as client:
            r = await client.get(f"{url}/boot/52-54-00-00-00-01.ipxe")
            assert r.status_code == 200
            assert r.text.startswith("#!ipxe\n")
            assert f"kernel {url}/artifacts/vmlinuz initrd=initrd console=ttyS0 token=t0k" \
                in r.text
            assert cp.boot_calls == [SERVED]
            assert srv.counters.scripts_served == 1
            # HEAD must not mint another join token at the Control Plane.
            h = await client.head(f"{url}/boot/52:54:00:00:00:01.ipxe")
            assert h.status_code == 200 and h.content == b""
            assert cp.boot_calls == [SERVED]
    run(go())


def test_unknown_or_filtered_mac_gets_404_and_no_script(root: Path) -> None:
    async def go() -> None:
        cp = FakeControlPlane()
        async with serving(root, cp, allow_mac=lambda mac: mac != "52:54:00:00:00:02"
                           ) as (srv, url), httpx.AsyncClient() as client:
            for path in ("/boot/52:54:00:00:00:09.ipxe", "/boot/52:54:00:00:00:02.ipxe",
                         "/boot/not-a-mac.ipxe"):
                r = await client.get(url + path)
                assert r.status_code == 404
                assert "ipxe" not in r.text
            # The filtered MAC never reached the Control Plane (no token minted for it).
            assert cp.boot_calls == ["52:54:00:00:00:09"]
            assert srv.counters.refused == 3
    run(go())


def test_get_head_and_ranges(root: Path) -> None:
    async def go() -> None:
        async with serving(root, FakeControlPlane()) as (_, url), \
                httpx.AsyncClient() as client:
            r = await client.get(f"{url}/ipxe.efi")
            assert r.status_code == 200 and r.content == EFI
            assert r.headers["accept-ranges"] == "bytes"
            h = await client.head(f"{url}/ipxe.efi")
            assert h.status_code == 200 and h.content == b""
            assert h.headers["content-length"] == str(len(EFI))
            p = await client.get(f"{url}/ipxe.efi", headers={"Range": "bytes=100-199"})
            assert p.status_code == 206 and p.content == EFI[100:200]
            assert p.headers["content-range"] == f"bytes 100-199/{len(EFI)}"
            s = await client.get(f"{url}/ipxe.efi", headers={"Range": "bytes=-10"})
            assert s.status_code == 206 and s.content == EFI[-10:]
            bad = await client.get(f"{url}/ipxe.efi",
                                   headers={"Range": f"bytes={len(EFI)}-"})
            assert bad.status_code == 416
            assert bad.headers["content-range"] == f"bytes */{len(EFI)}"
            stale = await client.get(f"{url}/ipxe.efi",
                                     headers={"Range": "bytes=0-9", "If-Range": '"old"'})
            assert stale.status_code == 200 and stale.content == EFI
            e = await client.get(f"{url}/empty")
            assert e.status_code == 200 and e.content == b""
            m = await client.post(f"{url}/ipxe.efi")
            assert m.status_code == 405
    run(go())


@pytest.mark.parametrize("path", ["/../secret", "/%2e%2e/secret", "/link-out", "/etc/passwd",
                                  "//etc/passwd", "/artifacts/../ipxe.efi", "/nope"])
def test_traversal_and_missing_are_404(root: Path, path: str) -> None:
    async def go() -> None:
        async with serving(root, FakeControlPlane()) as (_, url):
            reply = await raw_request(url, f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                                           "Connection: close\r\n\r\n".encode())
            assert reply.startswith(b"HTTP/1.1 404 "), reply[:100]
            assert b"outside" not in reply and b"root:" not in reply
    run(go())


def test_malformed_request_gets_400(root: Path) -> None:
    async def go() -> None:
        async with serving(root, FakeControlPlane()) as (_, url):
            reply = await raw_request(url, b"NONSENSE\r\n\r\n")
            assert reply.startswith(b"HTTP/1.1 400 ")
    run(go())


def test_artifacts_fetched_once_and_revalidated_after_restart(root: Path) -> None:
    async def go() -> None:
        cp = FakeControlPlane()
        async with serving(root, cp) as (srv, url), httpx.AsyncClient() as client:
            replies = await asyncio.gather(*[client.get(f"{url}/artifacts/vmlinuz")
                                             for _ in range(10)])
            assert all(r.status_code == 200 and r.content == KERNEL for r in replies)
            r = await client.get(f"{url}/artifacts/vmlinuz", headers={"Range": "bytes=5-9"})
            assert r.status_code == 206 and r.content == KERNEL[5:10]
            assert r.headers["etag"] == '"' + hashlib.sha256(KERNEL).hexdigest() + '"'
            assert cp.artifact_calls == [("vmlinuz", None)]
            assert srv.cache.hits >= 10
        cp2 = FakeControlPlane()
        async with serving(root, cp2) as (_, url), httpx.AsyncClient() as client:
            r = await client.get(f"{url}/artifacts/vmlinuz")
            assert r.content == KERNEL
            # The restarted server asked with If-None-Match and got "unchanged".
            assert cp2.artifact_calls == [("vmlinuz",
                                           '"' + hashlib.sha256(KERNEL).hexdigest() + '"')]
    run(go())


def test_hundred_concurrent_clients(root: Path) -> None:
    async def go() -> None:
        async with serving(root, FakeControlPlane()) as (srv, url):
            async def one() -> bytes:
                async with httpx.AsyncClient() as client:
                    r = await client.get(f"{url}/ipxe.efi")
                    assert r.status_code == 200
                    return r.content

            bodies = await asyncio.gather(*[one() for _ in range(100)])
            assert all(b == EFI for b in bodies)
            assert srv.counters.responses[200] == 100
            assert srv.counters.bytes_sent == 100 * len(EFI)
    run(go())


def test_keep_alive_serves_several_requests_on_one_connection(root: Path) -> None:
    async def go() -> None:
        async with serving(root, FakeControlPlane()) as (srv, url):
            req = b"HEAD /ipxe.efi HTTP/1.1\r\nHost: x\r\n\r\n"
            reply = await raw_request(url, req + req + req.replace(
                b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
            assert reply.count(b"HTTP/1.1 200 OK") == 3
            assert srv.counters.requests == 3
    run(go())


def test_connection_cap_answers_503(root: Path) -> None:
    async def go() -> None:
        cfg = HttpBootConfig(root=root, cache_dir=root.parent / "cache", host="127.0.0.1",
                             port=0, max_connections=1)
        srv = HttpBootServer(cfg, FakeControlPlane())
        await srv.start()
        host, port = srv.address
        _idle_reader, idle_writer = await asyncio.open_connection(host, port)
        try:
            async def connected() -> None:
                while srv.counters.active_connections < 1:
                    await asyncio.sleep(0.01)
            await asyncio.wait_for(connected(), 5)
            reply = await raw_request(f"http://{host}:{port}",
                                      b"GET /ipxe.efi HTTP/1.1\r\nHost: x\r\n\r\n")
            assert reply.startswith(b"HTTP/1.1 503 ")
            assert srv.counters.responses[503] == 1
        finally:
            idle_writer.close()
            await idle_writer.wait_closed()
            await srv.stop()
    run(go())
