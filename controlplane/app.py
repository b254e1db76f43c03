"""The FastAPI application: the Control Plane API v1 assembled from its routers.

`create_app(store, admin_token)` builds the whole service around a Store;
the process entry point (`__main__`) only adds uvicorn, TLS and the seed.
The routes live in `controlplane.routes` (one router per resource), what they
share in `controlplane.deps`, the error bodies in `controlplane.http_errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI
from fastapi.routing import APIRoute

from . import __version__
from .deps import Context
from .dns_update import DnsUpdater
from .faults import FaultTable
from .http_errors import EXCEPTION_HANDLERS
from .logs import silent
from .middleware import BodyLimit, FaultInjector, RequestLog
from .routes import ROUTERS
from .store import Store


def route_id(route: APIRoute) -> str:
    """The OpenAPI operationId of a route: its `name`, which faults also target."""
    return route.name


def create_app(
    store: Store,
    admin_token: str,
    *,
    public_url: str | None = None,
    log: Callable[..., None] = silent,
    faults: FaultTable | None = None,
    dns: DnsUpdater | None = None,
) -> FastAPI:
    """Build the Control Plane API around `store`; `admin_token` guards admin routes.

    `public_url` is the base URL put into boot data (`{cp_url}`, artifact URLs);
    without it each request's own base URL is used, which is what a proxy
    reached the service by. With `dns`, a node that reports Ready gets its hostname placed
    in the site's DNS (RFC 2136); every attempt is recorded as a `dns.update` event.
    """
    ctx = Context(store, admin_token, public_url, log, faults or FaultTable(), dns)
    store.on_change(ctx.notifier.notify)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ctx.notifier.bind(asyncio.get_running_loop())
        yield

    app = FastAPI(
        title="flexlab Control Plane (mock)",
        version=__version__,
        description="The mocked KubeFlex Control Plane: clusters, machines, boot profiles, "
        "Boot Proxy assignments, node registration and readiness. "
        "Contract: docs/CONTROLPLANE-API.md.",
        lifespan=lifespan,
        generate_unique_id_function=route_id,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.context = ctx
    # The middleware matches a request to its route name before routing does, so it gets
    # the flat list: FastAPI's own routes (/openapi.json, /docs) and every router's routes.
    routes = list(app.router.routes)
    for router in ROUTERS:
        app.include_router(router)
        routes.extend(router.routes)
    ctx.route_names = sorted({getattr(r, "name", "") for r in routes} - {""})
    # Added innermost first: RequestLog sees the final status, faults apply before limits.
    app.add_middleware(BodyLimit, routes=routes)
    app.add_middleware(FaultInjector, routes=routes, faults=ctx.faults)
    app.add_middleware(RequestLog, routes=routes, log=log)
    return app
