"""The asyncio HTTP/1.1 boot server: iPXE scripts, boot files, cached artifacts.

Deliberately small (stdlib streams, no framework) because it runs in the Boot
Proxy image on Debian's python3 with nothing else installed.  Files go out
with ``loop.sendfile`` (os.sendfile underneath), so large initrds cost no
Python copies.

URL space::

    GET/HEAD /boot/<mac>.ipxe        per-machine script (404 unless served: SILENT-5)
    GET/HEAD /artifacts/<name>       kernel/initrd from the Control Plane, cached on disk
    GET/HEAD /trust/cp-ca.cpio       the Control Plane CA as an initrd (only with ca_initrd)
    GET/HEAD /<path>                 files under the boot root (ipxe.efi, undionly.kpxe, ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bootproxy.httpboot.cache import ArtifactCache
from bootproxy.httpboot.counters import HttpCounters
from bootproxy.httpboot.errors import (
    ArtifactError,
    BootDataError,
    ControlPlaneUnavailable,
    HttpBootError,
    RequestError,
)
from bootproxy.httpboot.ranges import Unsatisfiable, parse_range
from bootproxy.httpboot.script import CA_INITRD_PATH, render_script
from bootproxy.httpboot.source import BootSource
from bootproxy.macs import parse_mac
from bootproxy.tftp.errors import PathError
from bootproxy.tftp.paths import resolve_in_root

log = logging.getLogger("bootproxy.httpboot")

AllowMacFn = Callable[[str], bool]
"""``allow_mac(mac) -> bool``: False gives that machine a 404 and no script (SILENT-5)."""
AllowIpFn = Callable[[str], bool]
"""``allow_ip(client_ip) -> bool``: False gives the client 404 for every path."""

_MAX_HEADER_BYTES = 16 * 1024
_REASONS = {200: "OK", 206: "Partial Content", 304: "Not Modified", 400: "Bad Request",
            404: "Not Found", 405: "Method Not Allowed", 416: "Range Not Satisfiable",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass(frozen=True)
class HttpBootConfig:
    """Where the server listens, what it serves, and the URL clients use to reach it.

    ``public_url`` goes into scripts (``http://<proxy ip>:<port>``); when empty
    it is taken from each request's Host header.
    """

    root: Path
    cache_dir: Path
    host: str = "0.0.0.0"
    port: int = 80
    public_url: str = ""
    idle_timeout: float = 30.0
    max_connections: int = 1024
    ca_initrd: Path | None = None


@dataclass
class _Request:
    method: str
    path: str
    version: str
    headers: dict[str, str]

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        return conn != "close" if self.version == "HTTP/1.1" else conn == "keep-alive"


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise RequestError("connection closed inside the request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise RequestError("request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise RequestError(f"bad request line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise RequestError(f"bad header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return _Request(parts[0], parts[1], parts[2], headers)


class HttpBootServer:
    """HTTP boot server for one Boot Proxy.  ``await start()`` / ``await stop()``."""

    def __init__(self, config: HttpBootConfig, source: BootSource,
                 allow_mac: AllowMacFn | None = None, allow_ip: AllowIpFn | None = None) -> None:
        self.config = config
        self.source = source
        self.allow_mac: AllowMacFn = allow_mac or (lambda _mac: True)
        self.allow_ip: AllowIpFn = allow_ip or (lambda _ip: True)
        self.cache = ArtifactCache(config.cache_dir, source)
        self.counters = HttpCounters()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); port resolved when 0 was asked for."""
        if self._server is None or not self._server.sockets:
            raise HttpBootError("HTTP boot server is not started; call await start() first")
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> None:
        """Listen.  Raises OSError if the port is taken."""
        self._server = await asyncio.start_server(
            self._connection, self.config.host, self.config.port,
            limit=_MAX_HEADER_BYTES, backlog=512)
        log.info("http boot listening on %s:%d root=%s", *self.address, self.config.root)

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> HttpBootServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.counters.active_connections += 1
        peer = writer.get_extra_info("peername") or ("?", 0)
        over_cap = self.counters.active_connections > self.config.max_connections
        try:
            while True:
                try:
                    request = await asyncio.wait_for(_read_request(reader),
                                                     self.config.idle_timeout)
                except RequestError as exc:
                    await self._simple(writer, 400, str(exc) + "\n", False, False)
                    return
                except TimeoutError:
                    return
                if request is None:
                    return
                self.counters.requests += 1
                if over_cap:
                    # Read the request first (closing on unread data would send a reset),
                    # then a quick 503: cheaper than letting the backlog grow.
                    await self._simple(writer, 503, "too many connections, retry\n", False,
                                       False, extra={"Retry-After": "1"})
                    return
                keep = await self._handle(request, peer[0], writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:  # one bad connection must not kill the server
            log.exception("http boot: connection from %s failed", peer)
        finally:
            self.counters.active_connections -= 1
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _simple(self, writer: asyncio.StreamWriter, status: int, body: str,
                      keep: bool, head_only: bool, content_type: str = "text/plain",
                      extra: dict[str, str] | None = None) -> bool:
        data = body.encode()
        headers = {"Content-Type": f"{content_type}; charset=utf-8",
                   "Content-Length": str(len(data)), **(extra or {})}
        self._write_head(writer, status, headers, keep)
        if not head_only:
            writer.write(data)
            self.counters.bytes_sent += len(data)
        await writer.drain()
        return keep

    def _write_head(self, writer: asyncio.StreamWriter, status: int, headers: dict[str, str],
                    keep: bool) -> None:
        self.counters.responses[status] += 1
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
                 f"Date: {email.utils.formatdate(usegmt=True)}",
                 "Server: flexlab-bootproxy",
                 f"Connection: {'keep-alive' if keep else 'close'}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def _handle(self, request: _Request, client_ip: str,
                      writer: asyncio.StreamWriter) -> bool:
        keep = request.keep_alive
        head = request.method == "HEAD"
        if request.method not in ("GET", "HEAD"):
            return await self._simple(writer, 405, "only GET and HEAD\n", keep, False,
                                      extra={"Allow": "GET, HEAD"})
        path = unquote(urlsplit(request.path).path)
        if not self.allow_ip(client_ip):
            self.counters.refused += 1
            return await self._simple(writer, 404, "not found\n", keep, head)
        if path.startswith("/boot/") and path.endswith(".ipxe"):
            return await self._script(request, path[len("/boot/"):-len(".ipxe")], writer, keep,
                                      head)
        if path == CA_INITRD_PATH and self.config.ca_initrd is not None:
            stat = self.config.ca_initrd.stat()
            etag = f'"ca-{stat.st_size:x}-{stat.st_mtime_ns:x}"'
            return await self._file(request, self.config.ca_initrd, etag, writer, keep, head)
        if path.startswith("/artifacts/"):
            name = path[len("/artifacts/"):]
            if "/" in name or name in ("", ".", ".."):
                return await self._simple(writer, 404, "not found\n", keep, head)
            try:
                artifact = await self.cache.get(name)
            except ArtifactError as exc:
                log.warning("http boot: %s", exc)
                return await self._simple(writer, 502, f"{exc}\n", keep, head)
            return await self._file(request, artifact.path, f'"{artifact.sha256}"', writer,
                                    keep, head)
        try:
            file_path = resolve_in_root(self.config.root, path.lstrip("/"))
        except PathError:
            return await self._simple(writer, 404, "not found\n", keep, head)
        stat = file_path.stat()
        etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        return await self._file(request, file_path, etag, writer, keep, head)

    async def _script(self, request: _Request, raw_mac: str, writer: asyncio.StreamWriter,
                      keep: bool, head: bool) -> bool:
        mac = parse_mac(raw_mac)
        if mac is None or not self.allow_mac(mac):
            self.counters.refused += 1
            return await self._simple(writer, 404, "not found\n", keep, head)
        if head:
            # Asking the Control Plane would mint a join token and kill the one a GET
            # already handed out, so HEAD answers from the MAC filter alone.
            self._write_head(writer, 200, {"Content-Type": "text/plain; charset=utf-8",
                                           "Cache-Control": "no-store"}, keep)
            await writer.drain()
            return keep
        try:
            boot = await self.source.boot_data(mac)
        except ControlPlaneUnavailable as exc:
            log.warning("http boot: boot data for %s: %s", mac, exc)
            return await self._simple(writer, 503, "Control Plane unavailable, retry\n", keep,
                                      head, extra={"Retry-After": "5"})
        except HttpBootError as exc:
            log.warning("http boot: boot data for %s: %s", mac, exc)
            return await self._simple(writer, 502, "boot data unavailable\n", keep, head)
        if boot is None:
            self.counters.refused += 1
            return await self._simple(writer, 404, "not found\n", keep, head)
        self.cache.expect(boot.kernel, boot.kernel_sha256)
        self.cache.expect(boot.initrd, boot.initrd_sha256)
        base = self.config.public_url or f"http://{request.headers.get('host', 'localhost')}"
        try:
            text = render_script(boot, base, ca_initrd=self.config.ca_initrd is not None)
        except BootDataError as exc:
            log.warning("http boot: %s", exc)
            return await self._simple(writer, 502, "bad boot data\n", keep, head)
        self.counters.scripts_served += 1
        return await self._simple(writer, 200, text, keep, head,
                                  extra={"Cache-Control": "no-store"})

    async def _file(self, request: _Request, path: Path, etag: str,
                    writer: asyncio.StreamWriter, keep: bool, head: bool) -> bool:
        with path.open("rb") as f:
            size = path.stat().st_size
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            headers = {"Content-Type": ctype, "Accept-Ranges": "bytes", "ETag": etag}
            try:
                span = parse_range(request.headers.get("range"), size)
            except Unsatisfiable:
                return await self._simple(writer, 416, "range not satisfiable\n", keep, head,
                                          extra={"Content-Range": f"bytes */{size}"})
            if request.headers.get("if-range", etag) != etag:
                span = None  # the client's partial copy is stale: send it all
            if span is None:
                status, start, length = 200, 0, size
            else:
                status, start, length = 206, span[0], span[1] - span[0] + 1
                headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{size}"
            headers["Content-Length"] = str(length)
            self._write_head(writer, status, headers, keep)
            await writer.drain()
            if not head and length:
                loop = asyncio.get_running_loop()
                sent = await loop.sendfile(writer.transport, f, start, length)
                self.counters.bytes_sent += sent
        return keep
