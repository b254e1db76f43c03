"""The emulators' HTTP client says why a fetch failed: a silent server is a timeout, named."""

from __future__ import annotations

import asyncio
import socket

import pytest

from harness.machines.sim import http as sim_http
from harness.machines.sim.errors import BootFailed

pytestmark = pytest.mark.unit


def test_a_server_that_never_answers_is_reported_as_a_timeout() -> None:
    """TimeoutError is an OSError: caught as one, the message was empty ("GET url: ")."""

    async def body() -> BootFailed:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1 << 16)  # takes the request, never answers

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        try:
            await sim_http.request(sock, f"http://127.0.0.1:{port}/ipxe.efi", timeout=0.3)
        except BootFailed as exc:
            return exc
        finally:
            server.close()
        raise AssertionError("a silent server must fail the request")

    exc = asyncio.run(body())
    assert exc.code == "HTTP"
    assert "no answer within 0.3s" in str(exc), str(exc)
