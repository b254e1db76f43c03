"""Boot Proxies: registration, heartbeats, and the assignments long-poll."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from ..deps import ERRORS, Ctx, Who, need
from ..errors import Forbidden
from ..models import Assignments, Heartbeat, Ok, ProxyIn, ProxyOut, ProxyToken
from ..store import Principal

MAX_WAIT_S = 60.0
router = APIRouter(prefix="/api/v1/proxies", tags=["proxies"], responses=ERRORS)
_NOT_MODIFIED = {"responses": {"304": {"description": "nothing changed within `wait` seconds"}}}


@router.post("", name="proxies_create", response_model=ProxyToken, status_code=201)
def create_proxy(body: ProxyIn, who: Who, ctx: Ctx) -> dict[str, str]:
    """Register a Boot Proxy (admin); the answer holds its token, shown once."""
    need(who, "admin")
    return ctx.store.create_proxy(body)


@router.get("", name="proxies_list", response_model=list[ProxyOut])
def list_proxies(who: Who, ctx: Ctx) -> list[dict[str, Any]]:
    """Every proxy with its last heartbeat (admin)."""
    need(who, "admin")
    return ctx.store.list_proxies()


@router.post("/{name}/heartbeat", name="heartbeat", response_model=Ok)
def heartbeat(name: str, body: Heartbeat, who: Who, ctx: Ctx) -> dict[str, bool]:
    """A proxy says it is alive, with its version and segments."""
    _own_proxy(who, name)
    ctx.store.proxy_clusters(name)
    ctx.store.heartbeat(name, body)
    return {"ok": True}


@router.get("/{name}/assignments", name="assignments", response_model=Assignments,
            openapi_extra=_NOT_MODIFIED)
async def assignments(
    name: str,
    request: Request,
    response: Response,
    who: Who,
    ctx: Ctx,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0.0,
) -> Any:
    """The MACs this proxy serves. With If-None-Match and `?wait=S`, long-poll.

    Answers 200 as soon as the assignments differ from the given ETag
    (woken by the store's change notification, so within milliseconds),
    or 304 after `wait` seconds without a change.
    """
    _own_proxy(who, name)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    known = request.headers.get("if-none-match")
    while True:
        seen = ctx.notifier.generation
        revision, items, digest = await run_in_threadpool(ctx.store.assignments, name)
        etag = f'"{digest[:32]}"'  # equal assignments, equal tags, across restarts
        remaining = deadline - loop.time()
        if known != etag:
            response.headers["ETag"] = etag
            return {"revision": revision, "assignments": items}
        if remaining <= 0:
            return Response(status_code=304, headers={"ETag": etag})
        # Wake at least once a second to notice a proxy that hung up.
        woke = await ctx.notifier.wait(seen, min(remaining, 1.0))
        if woke == seen and await request.is_disconnected():
            return Response(status_code=304, headers={"ETag": etag})


def _own_proxy(who: Principal, name: str) -> None:
    """403 unless the caller is admin or the proxy `name` itself."""
    need(who, "proxy", "admin")
    if who.kind == "proxy" and who.name != name:
        raise Forbidden(f"a proxy token for {who.name!r} cannot act as proxy {name!r}")
