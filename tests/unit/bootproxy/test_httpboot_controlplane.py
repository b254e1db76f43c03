"""The HTTP boot server against the real mock Control Plane (controlplane/, a loopback process).

Checks the ControlPlaneSource adapter end to end: script from real boot data
(with a fresh join token per GET), artifacts cached once and refreshed when the
Control Plane's sha256 for a name changes, MACs of other proxies refused.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Coroutine
from pathlib import Path

import httpx
import pytest

from bootproxy.httpboot import ControlPlaneSource, HttpBootConfig, HttpBootServer
from controlplane.client import ControlPlaneClient as AdminClient
from harness.components.controlplane_process import ControlPlaneProcess

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]


def run(coro: Coroutine[object, object, None]) -> None:
    """Run one test coroutine on a fresh loop (no pytest-asyncio dependency)."""
    asyncio.run(asyncio.wait_for(coro, 60))


def test_scripts_and_artifacts_from_the_control_plane(cp: ControlPlaneProcess,
                                                       tmp_path: Path) -> None:
    suffix = secrets.token_hex(3)
    mine, other = f"02:fc:{suffix[:2]}:{suffix[2:4]}:{suffix[4:]}:01", \
        f"02:fc:{suffix[:2]}:{suffix[2:4]}:{suffix[4:]}:02"
    kernel_v1, kernel_v2 = b"kernel-one" * 1000, b"kernel-two" * 1000
    with AdminClient(cp.url, cp.admin_token) as admin:
        admin.create_cluster(f"c-{suffix}", 1)
        admin.create_cluster(f"d-{suffix}", 1)
        admin.upload_artifact(f"vmlinuz-{suffix}", kernel_v1)
        admin.upload_artifact(f"initrd-{suffix}", b"initrd")
        admin.create_profile(f"p-{suffix}", f"vmlinuz-{suffix}", f"initrd-{suffix}",
                             "console=ttyS0 flexlab.join={join_token} host={hostname}")
        token = admin.register_proxy(f"px-{suffix}", [f"c-{suffix}"], ["seg0"])
        admin.register_proxy(f"py-{suffix}", [f"d-{suffix}"], ["seg1"])
        admin.create_machine(mine, f"c-{suffix}", f"n1-{suffix}", f"p-{suffix}")
        admin.create_machine(other, f"d-{suffix}", f"n2-{suffix}", f"p-{suffix}")

        async def go() -> None:
            root = tmp_path / "root"
            root.mkdir()
            source = ControlPlaneSource(cp.url, token)
            server = HttpBootServer(HttpBootConfig(root=root, cache_dir=tmp_path / "cache",
                                                   host="127.0.0.1", port=0), source)
            await server.start()
            try:
                host, port = server.address
                base = f"http://{host}:{port}"
                async with httpx.AsyncClient(base_url=base) as client:
                    first = await client.get(f"/boot/{mine}.ipxe")
                    assert first.status_code == 200, first.text
                    assert f"kernel {base}/artifacts/vmlinuz-{suffix} initrd=initrd " \
                        "console=ttyS0 flexlab.join=" in first.text
                    assert f"host=n1-{suffix}" in first.text
                    second = await client.get(f"/boot/{mine}.ipxe")
                    assert second.text != first.text  # a fresh one-time join token
                    refused = await client.get(f"/boot/{other}.ipxe")
                    assert refused.status_code == 404 and "ipxe" not in refused.text

                    k = await client.get(f"/artifacts/vmlinuz-{suffix}")
                    assert k.status_code == 200 and k.content == kernel_v1
                    assert server.cache.fetches == 1

                    await asyncio.to_thread(admin.upload_artifact, f"vmlinuz-{suffix}",
                                            kernel_v2)
                    k = await client.get(f"/artifacts/vmlinuz-{suffix}")
                    assert k.content == kernel_v1  # nothing told the proxy yet
                    await client.get(f"/boot/{mine}.ipxe")  # boot data carries the new sha
                    k = await client.get(f"/artifacts/vmlinuz-{suffix}")
                    assert k.content == kernel_v2
                    assert server.cache.fetches == 2
            finally:
                await server.stop()
                await source.aclose()

        run(go())


def _garbage_server() -> tuple[object, str]:
    """A loopback HTTP server that answers every request 200 with a non-JSON body."""
    import http.server
    import threading

    class Liar(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html>surprise</html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Liar)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


@pytest.mark.parametrize("cp_kind", ["down", "garbage"])
def test_control_plane_down_or_lying_gives_503_retry(tmp_path: Path, cp_kind: str) -> None:
    """No script is guessed: an unreachable or lying Control Plane means 503 + Retry-After."""
    liar = None
    if cp_kind == "garbage":
        liar, url = _garbage_server()
    else:
        import socket

        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{s.getsockname()[1]}"

    async def go() -> None:
        root = tmp_path / "root"
        root.mkdir()
        source = ControlPlaneSource(url, "token", timeout=2.0)
        server = HttpBootServer(HttpBootConfig(root=root, cache_dir=tmp_path / "cache",
                                               host="127.0.0.1", port=0), source)
        await server.start()
        try:
            host, port = server.address
            async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
                reply = await client.get("/boot/02:00:00:00:00:01.ipxe")
                assert reply.status_code == 503
                assert reply.headers["Retry-After"] == "5"
                assert "#!ipxe" not in reply.text
                assert server.counters.scripts_served == 0
        finally:
            await server.stop()
            await source.aclose()

    try:
        run(go())
    finally:
        if liar is not None:
            liar.shutdown()  # type: ignore[attr-defined]
