"""The emulators' HTTP client says why a fetch failed: a silent server is a timeout, named."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from harness.machines.sim import http as sim_http
from harness.machines.sim.errors import BootFailed

pytestmark = pytest.mark.unit

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _server_and_client(handler: Handler) -> tuple[asyncio.Server, int, socket.socket]:
    """A loopback asyncio server running ``handler``, its port, and the non-blocking TCP
    socket, bound on loopback, that the emulator's client connects from."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    return server, server.sockets[0].getsockname()[1], sock


def test_a_server_that_never_answers_is_reported_as_a_timeout() -> None:
    """TimeoutError is an OSError: caught as one, the message was empty ("GET url: ")."""

    async def body() -> BootFailed:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1 << 16)  # takes the request, never answers

        server, port, sock = await _server_and_client(silent)
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


def test_a_callable_body_is_made_once_connected_and_sent_whole() -> None:
    """The agent's clock goes into its body when the request leaves, not before the
    (possibly long, on a busy shared loop) connect."""
    got: list[bytes] = []
    order: list[str] = []

    async def main() -> int:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            order.append("accepted")
            got.append(await reader.readuntil(b"\r\n\r\n"))
            got.append(await reader.readexactly(len(b'{"clock": 1}')))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        def body() -> bytes:
            order.append("body")
            return b'{"clock": 1}'

        server, port, sock = await _server_and_client(answer)
        try:
            resp = await sim_http.request(sock, f"http://127.0.0.1:{port}/r", method="POST",
                                          body=body, timeout=5)
        finally:
            server.close()
        return resp.status

    assert asyncio.run(main()) == 200
    assert order.count("body") == 1
    assert b"Content-Length: 12" in got[0] and got[1] == b'{"clock": 1}'
