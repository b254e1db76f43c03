"""What every route module shares: the service context, who is calling, and their rights.

The routers are module-level `APIRouter`s; what they need of one running service
(its store, notifier, faults, DNS updater) comes from `request.app.state.context`
through the `Ctx` dependency, so `create_app` builds one `Context` and nothing
closes over it. Authentication (`Who`) is a dependency; authorisation (`need`)
stays a call inside each handler so a bad body is still a 422 before a 403.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .dns_update import DnsUpdater
from .errors import Forbidden, Unauthenticated
from .faults import FaultTable
from .http_errors import FieldError
from .logs import silent
from .models import ErrorBody, normalise_mac
from .store import Principal, Store
from .watch import ChangeNotifier

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 413, 422)
}
_bearer = HTTPBearer(auto_error=False, description="admin, proxy, join or node token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


@dataclass
class Context:
    """One running service: its state and the hooks its routes act on."""

    store: Store
    admin_token: str
    public_url: str | None = None
    log: Callable[..., None] = silent
    faults: FaultTable = field(default_factory=FaultTable)
    dns: DnsUpdater | None = None
    notifier: ChangeNotifier = field(default_factory=ChangeNotifier)
    placed: dict[str, str] = field(default_factory=dict)  # MAC -> address we put in DNS
    route_names: list[str] = field(default_factory=list)  # what a fault may target


async def context(request: Request) -> Context:
    """The service this request reached (no I/O, so it runs on the loop)."""
    ctx: Context = request.app.state.context
    return ctx


Ctx = Annotated[Context, Depends(context)]


async def principal(ctx: Ctx, creds: Credentials) -> Principal:
    """Resolve the bearer token to who holds it; 401 when missing or never issued.

    On the loop, not in a worker thread: one indexed read of the local database is
    cheaper than the hop to a thread and back, which every authenticated request paid.
    """
    if creds is None or not creds.credentials:
        raise Unauthenticated(
            "missing 'Authorization: Bearer <token>' header; every write and every admin "
            "read needs an admin, proxy, join or node token"
        )
    token = creds.credentials
    if hmac.compare_digest(token.encode(), ctx.admin_token.encode()):
        return Principal("admin")
    found = ctx.store.principal(token)
    if found is None:
        raise Unauthenticated("unknown token; check that you copied the whole token")
    return found


Who = Annotated[Principal, Depends(principal)]


def need(who: Principal, *kinds: str) -> None:
    """403 unless the caller's token is one of `kinds`."""
    if who.kind not in kinds:
        raise Forbidden(
            f"this route needs a token of kind {' or '.join(kinds)}; "
            f"you sent a {who.kind} token"
        )


def base_url(ctx: Context, request: Request) -> str:
    """The URL boot data points at: `--public-url`, else the one this client used."""
    return (ctx.public_url or str(request.base_url)).rstrip("/")


def path_mac(mac: str) -> str:
    """A MAC from the URL path, normalised; a 422 on `path.mac` when it is not one."""
    try:
        return normalise_mac(mac)
    except ValueError as exc:
        raise FieldError("path.mac", str(exc)) from exc
