"""A small HTTP/1.1 client over a socket bound to the machine's own address and device.

Enough for what firmware and the node agent do: GET (scripts, kernels,
initrds) and POST JSON, Content-Length or chunked bodies. Large bodies are
hashed, not kept. ``https://`` (the agent's Control Plane) runs TLS over the same
socket with the context the caller gives: the agent's, trusting only the CA from
its boot (:mod:`harness.machines.sim.trust`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from harness.machines.sim.errors import BootFailed
from harness.machines.sim.trust import refusal

KEEP_LIMIT = 1 << 20


@dataclass
class HttpResponse:
    """Status, headers, size and digest; ``body`` only when it is small (≤ 1 MiB)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    size: int = 0
    sha256: str = ""
    body: bytes = b""

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str],
                     resp: HttpResponse) -> None:
    digest = hashlib.sha256()
    kept = bytearray()

    def take(chunk: bytes) -> None:
        digest.update(chunk)
        resp.size += len(chunk)
        if len(kept) < KEEP_LIMIT:
            kept.extend(chunk[: KEEP_LIMIT - len(kept)])

    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            line = await reader.readline()
            length = int(line.split(b";")[0].strip() or b"0", 16)
            if length == 0:
                await reader.readline()
                break
            take(await reader.readexactly(length))
            await reader.readline()
    elif "content-length" in headers:
        remaining = int(headers["content-length"])
        while remaining:
            chunk = await reader.read(min(remaining, 1 << 16))
            if not chunk:
                raise BootFailed("HTTP", "connection closed before the whole body arrived")
            take(chunk)
            remaining -= len(chunk)
    else:
        while chunk := await reader.read(1 << 16):
            take(chunk)
    resp.sha256 = digest.hexdigest()
    resp.body = bytes(kept) if resp.size <= KEEP_LIMIT else b""


async def request(sock: socket.socket, url: str, *, method: str = "GET",
                  headers: dict[str, str] | None = None,
                  body: bytes | Callable[[], bytes] = b"",
                  timeout: float = 30.0, user_agent: str = "iPXE/1.0.0+",
                  tls: ssl.SSLContext | None = None) -> HttpResponse:
    """One request on ``sock`` (bound, not yet connected); the socket is closed afterwards.

    An ``https://`` URL needs ``tls``: the handshake checks the certificate against it
    with the URL's host (an IP literal against the IP SAN) before a byte of the request
    is sent; a refused certificate raises :class:`~harness.machines.sim.errors.TlsRefused`.
    A callable ``body`` is called once the connection is up, right before the request is
    written: what it stamps (the agent's clock) is as fresh as a real machine's would be,
    however long this machine waited for the shared event loop to connect.
    """
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    if parts.scheme not in ("http", "https") or parts.hostname is None:
        raise BootFailed("HTTP", f"cannot fetch {url!r}: only http(s):// URLs with a host")
    if secure and tls is None:
        raise BootFailed("HTTP", f"cannot fetch {url!r}: https without a TLS context")
    port = parts.port or (443 if secure else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    loop = asyncio.get_running_loop()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (parts.hostname, port))
            if secure:
                reader, writer = await asyncio.open_connection(
                    sock=sock, ssl=tls, server_hostname=parts.hostname,
                    ssl_handshake_timeout=timeout)
            else:
                reader, writer = await asyncio.open_connection(sock=sock)
            if callable(body):
                body = body()
            head = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}",
                    f"User-Agent: {user_agent}", "Connection: close"]
            for key, value in (headers or {}).items():
                head.append(f"{key}: {value}")
            if body or method == "POST":
                head.append(f"Content-Length: {len(body)}")
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            await writer.drain()
            status_line = await reader.readline()
            try:
                status = int(status_line.split()[1])
            except (IndexError, ValueError):
                raise BootFailed("HTTP", f"bad status line from {url}: {status_line!r}") from None
            resp_headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                key, _, value = line.decode("latin-1").partition(":")
                resp_headers[key.strip().lower()] = value.strip()
            resp = HttpResponse(status, resp_headers)
            if method != "HEAD":
                await _read_body(reader, resp_headers, resp)
            return resp
    except ssl.SSLCertVerificationError as exc:  # an OSError too: before that clause
        assert parts.hostname is not None
        raise refusal(exc, parts.hostname) from exc
    except TimeoutError:  # first: TimeoutError is an OSError, whose message is empty
        raise BootFailed("HTTP", f"{method} {url}: no answer within {timeout:.1f}s") from None
    except (OSError, asyncio.IncompleteReadError) as exc:
        raise BootFailed("HTTP", f"{method} {url}: {exc}") from exc
    finally:
        if writer is not None:
            writer.close()
        else:
            sock.close()
