"""ASGI middleware: body size limit, fault injection, request log.

Pure ASGI (not BaseHTTPMiddleware) so streaming bodies and long-polls pass
through untouched and the fault layer can rewrite a finished JSON answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .faults import FaultTable, corrupt

MAX_BODY_BYTES = 1024 * 1024
UNLIMITED_ROUTES = frozenset({"artifact_upload"})


_ROUTE_KEY = "flexlab.route"


def route_name(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The `name` of the route that will handle `scope`, or "" if none matches.

    Worked out once per request and kept in the scope: each of the three middleware
    layers asks, and a scan is a regular-expression match per route.
    """
    known = scope.get(_ROUTE_KEY)
    if known is not None:
        return str(known)
    name = ""
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            name = str(getattr(route, "name", "") or "")
            break
    scope[_ROUTE_KEY] = name
    return name


async def send_json(send: Send, status: int, body: dict[str, Any],
                    headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer with a JSON body directly from middleware."""
    data = json.dumps(body).encode()
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": data})


class _RouteMiddleware:
    """Passes non-HTTP traffic through; gives each HTTP request to `handle` with its route name."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(route_name(self.routes, scope), scope, receive, send)

    async def handle(self, route: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request that `route` (a route name, or "") will answer."""
        raise NotImplementedError


class BodyLimit(_RouteMiddleware):
    """Refuse request bodies over `limit` bytes with 413 (artifact uploads exempt)."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute],
                 limit: int = MAX_BODY_BYTES) -> None:
        super().__init__(app, routes)
        self.limit = limit

    async def handle(self, route: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the body through, counted; answer 413 once it is over the limit."""
        if route in UNLIMITED_ROUTES:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await send_json(send, 413, _too_large(self.limit))
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # An HTTPException, so FastAPI's body reader passes it through to
                    # the error handler instead of turning it into a generic 400.
                    raise HTTPException(413, _too_large(self.limit)["detail"])
            return message

        await self.app(scope, counting_receive, send)


def _too_large(limit: int) -> dict[str, str]:
    return {
        "error": "request body too large",
        "detail": f"request bodies are limited to {limit} bytes; "
                  "only artifact uploads (POST /api/v1/artifacts/{name}) may be larger",
    }


class FaultInjector(_RouteMiddleware):
    """Apply the fault configured for the matched route: latency, down, errors, lies."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute], faults: FaultTable) -> None:
        super().__init__(app, routes)
        self.faults = faults

    async def handle(self, route: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Delay, refuse, fail or corrupt this request as its route's fault says."""
        fault = self.faults.for_route(route)
        if fault is None:
            await self.app(scope, receive, send)
            return
        applied: list[str] = []
        if fault.latency_ms:
            applied.append(f"latency={fault.latency_ms}ms")
            await asyncio.sleep(fault.latency_ms / 1000.0)
        if fault.down:
            await _injected(send, 503, "service down (injected fault)",
                            f"route {route!r} is switched off; DELETE /api/v1/faults to restore it",
                            [*applied, "down"])
            return
        if fault.error_rate and self.faults.roll(fault.error_rate):
            await _injected(send, 500, "internal error (injected fault)",
                            f"route {route!r} fails {fault.error_rate:.0%} of requests; retry",
                            [*applied, "error"])
            return
        if fault.wrong_answer:
            applied.append("wrong_answer")
            await self._lie(scope, receive, send, applied)
            return
        await self.app(scope, receive, _with_headers(send, [_fault_header(applied)]))

    async def _lie(self, scope: Scope, receive: Receive, send: Send, applied: list[str]) -> None:
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        if start is None:
            return
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start.get("headers", [])
                   if k.lower() not in (b"content-length", b"etag")]
        is_json = any(k.lower() == b"content-type" and v.startswith(b"application/json")
                      for k, v in headers)
        if is_json and body:
            with contextlib.suppress(ValueError):
                body = json.dumps(corrupt(json.loads(body))).encode()
        headers += [(b"content-length", str(len(body)).encode()), _fault_header(applied)]
        await send({"type": "http.response.start", "status": start["status"],
                    "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _fault_header(applied: list[str]) -> tuple[bytes, bytes]:
    """`X-Flexlab-Fault: latency=…ms,down`: what the fault layer did to this answer."""
    return (b"x-flexlab-fault", ",".join(applied).encode())


async def _injected(send: Send, status: int, error: str, detail: str,
                    applied: list[str]) -> None:
    """Answer in the service's own error shape, marked as an injected fault."""
    await send_json(send, status, {"error": error, "detail": detail}, [_fault_header(applied)])


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)
    return wrapped


class RequestLog(_RouteMiddleware):
    """Log one JSON line per request: method, path, route, status, duration."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute],
                 log: Callable[..., None]) -> None:
        super().__init__(app, routes)
        self.log = log

    async def handle(self, route: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, then log it, also when it failed."""
        started = time.monotonic()
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            client = scope.get("client")
            self.log("request", method=scope["method"], path=scope["path"],
                     route=route, status=status,
                     ms=round((time.monotonic() - started) * 1000, 2),
                     client=client[0] if client else None)
