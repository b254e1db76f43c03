"""The FastAPI application: routes of the Control Plane API v1.

`create_app(store, admin_token)` builds the whole service around a Store;
the process entry point (`__main__`) only adds uvicorn, TLS and the seed.
Each route has a stable `name`: it is the OpenAPI operationId and the scope
fault injection uses (`PUT /api/v1/faults {"endpoint": "assignments"}`).
"""

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from . import __version__
from .dns_update import DnsUpdater
from .errors import ControlPlaneError, Forbidden, InvalidReference, Unauthenticated
from .faults import FaultTable
from .logs import silent
from .middleware import BodyLimit, FaultInjector, RequestLog
from .models import (
    ArtifactOut,
    Assignments,
    BootData,
    ClusterIn,
    ClusterOut,
    ConflictIn,
    ConflictOut,
    ErrorBody,
    Event,
    FaultIn,
    Faults,
    Health,
    Heartbeat,
    MachineIn,
    MachineOut,
    Ok,
    ProfileIn,
    ProfileOut,
    ProxyIn,
    ProxyOut,
    ProxyToken,
    RegisterIn,
    RegisterOut,
    TimeOut,
    artifact_name,
    normalise_mac,
)
from .store import Principal, Store
from .watch import ChangeNotifier

MAX_WAIT_S = 60.0
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 413, 422)
}
_bearer = HTTPBearer(auto_error=False, description="admin, proxy, join or node token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


def _route_id(route: APIRoute) -> str:
    return route.name


def node_address(machine: dict[str, Any]) -> str | None:
    """The IPv4 address a node reported on its booting NIC (else on any NIC)."""
    nics = (machine.get("facts") or {}).get("nics") or []
    on_boot_nic = [n.get("ipv4") for n in nics if n.get("mac") == machine["mac"]]
    for ip in [*on_boot_nic, *(n.get("ipv4") for n in nics)]:
        if ip:
            return str(ip)
    return None


def _place_in_dns(dns: DnsUpdater, store: Store, machine: dict[str, Any],
                  placed: dict[str, str]) -> None:
    """Put a Ready node's name in DNS and record the outcome; never fails the request."""
    mac = machine["mac"]
    address = node_address(machine)
    if address is None:
        store.record_event("dns.update", mac, ok=False, fqdn=machine["hostname"], address=None,
                           detail="the node reported no IPv4 address in its facts")
        return
    outcome = dns.add(machine["hostname"], address, previous=placed.get(mac))
    if outcome.ok:
        placed[mac] = address
    store.record_event("dns.update", mac, ok=outcome.ok, fqdn=outcome.fqdn,
                       address=outcome.address, detail=outcome.detail)


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
    notifier = ChangeNotifier()
    placed: dict[str, str] = {}  # MAC -> address this Control Plane put in DNS
    store.on_change(notifier.notify)
    fault_table = faults or FaultTable()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        notifier.bind(asyncio.get_running_loop())
        yield

    app = FastAPI(
        title="flexlab Control Plane (mock)",
        version=__version__,
        description="The mocked KubeFlex Control Plane: clusters, machines, boot profiles, "
        "Boot Proxy assignments, node registration and readiness. "
        "Contract: docs/CONTROLPLANE-API.md.",
        lifespan=lifespan,
        generate_unique_id_function=_route_id,
    )
    app.state.store = store
    app.state.faults = fault_table
    app.state.notifier = notifier
    routes = app.router.routes
    # Added innermost first: RequestLog sees the final status, faults apply before limits.
    app.add_middleware(BodyLimit, routes=routes)
    app.add_middleware(FaultInjector, routes=routes, faults=fault_table)
    app.add_middleware(RequestLog, routes=routes, log=log)
    _install_error_handlers(app)

    def principal(creds: Credentials) -> Principal:
        """Resolve the bearer token to who holds it; 401 when missing or never issued."""
        if creds is None or not creds.credentials:
            raise Unauthenticated(
                "missing 'Authorization: Bearer <token>' header; every write and every admin "
                "read needs an admin, proxy, join or node token"
            )
        token = creds.credentials
        if hmac.compare_digest(token.encode(), admin_token.encode()):
            return Principal("admin")
        found = store.principal(token)
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

    def base_url(request: Request) -> str:
        return (public_url or str(request.base_url)).rstrip("/")

    # -- open routes ----------------------------------------------------------

    @app.get("/healthz", name="healthz", response_model=Health, tags=["meta"])
    def healthz() -> dict[str, str]:
        """Liveness: the service answers and its store is open."""
        store.revision()
        return {"status": "ok"}

    @app.get("/api/v1/time", name="time", response_model=TimeOut, tags=["meta"])
    def get_time() -> dict[str, float]:
        """The Control Plane's clock, for the node agent's ±1 s check."""
        return {"unix": store.clock()}

    # -- clusters -------------------------------------------------------------

    @app.post(
        "/api/v1/clusters",
        responses=ERRORS,
        name="clusters_create",
        response_model=ClusterOut,
        status_code=201,
        tags=["clusters"],
    )
    def create_cluster(body: ClusterIn, who: Who) -> dict[str, Any]:
        """Create a cluster (admin)."""
        need(who, "admin")
        return store.create_cluster(body)

    @app.get(
        "/api/v1/clusters",
        responses=ERRORS,
        name="clusters_list",
        response_model=list[ClusterOut],
        tags=["clusters"],
    )
    def list_clusters(who: Who) -> list[dict[str, Any]]:
        """Every cluster with its status (admin)."""
        need(who, "admin")
        return store.list_clusters()

    @app.get(
        "/api/v1/clusters/{name}",
        responses=ERRORS,
        name="cluster_get",
        response_model=ClusterOut,
        tags=["clusters"],
    )
    def get_cluster(name: str, who: Who) -> dict[str, Any]:
        """One cluster: Ready when all its expected nodes are; `missing` says why not."""
        need(who, "admin")
        return store.get_cluster(name)

    # -- artifacts and profiles ----------------------------------------------

    @app.post(
        "/api/v1/artifacts/{name}",
        responses=ERRORS,
        name="artifact_upload",
        response_model=ArtifactOut,
        status_code=201,
        tags=["artifacts"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        },
    )
    async def upload_artifact(name: str, request: Request, who: Who) -> dict[str, Any]:
        """Upload kernel or initrd bytes (admin); no size limit here."""
        need(who, "admin")
        try:
            artifact_name(name)
        except ValueError as exc:
            raise _field_error("path.name", str(exc)) from exc
        # Streamed to a temporary file: kernels and initrds need not fit in memory.
        tmp = store.upload_path(name)
        digest = hashlib.sha256()
        size = 0
        try:
            with tmp.open("wb") as out:
                async for chunk in request.stream():
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            return await run_in_threadpool(
                store.commit_artifact, name, tmp, size, digest.hexdigest()
            )
        finally:
            tmp.unlink(missing_ok=True)

    @app.get(
        "/api/v1/artifacts",
        responses=ERRORS,
        name="artifacts_list",
        response_model=list[ArtifactOut],
        tags=["artifacts"],
    )
    def list_artifacts(who: Who) -> list[dict[str, Any]]:
        """Metadata of every artifact (admin or proxy)."""
        need(who, "admin", "proxy")
        return store.list_artifacts()

    def artifact_response(name: str, request: Request, who: Principal) -> Response:
        need(who, "admin", "proxy")
        meta, path = store.artifact(name)
        etag = f'"{meta["sha256"]}"'
        headers = {"ETag": etag, "X-Checksum-Sha256": meta["sha256"]}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return FileResponse(path, media_type="application/octet-stream", headers=headers)

    @app.get(
        "/api/v1/artifacts/{name}",
        responses=ERRORS,
        name="artifact_get",
        tags=["artifacts"],
        response_class=FileResponse,
    )
    def get_artifact(name: str, request: Request, who: Who) -> Response:
        """Download an artifact (proxy or admin) with ETag = its sha256."""
        return artifact_response(name, request, who)

    @app.head(
        "/api/v1/artifacts/{name}", responses=ERRORS, name="artifact_head", tags=["artifacts"]
    )
    def head_artifact(name: str, request: Request, who: Who) -> Response:
        """Size and ETag of an artifact without the bytes."""
        return artifact_response(name, request, who)

    @app.post(
        "/api/v1/profiles",
        responses=ERRORS,
        name="profiles_create",
        response_model=ProfileOut,
        status_code=201,
        tags=["profiles"],
    )
    def create_profile(body: ProfileIn, who: Who) -> dict[str, Any]:
        """Create or replace a boot profile (admin)."""
        need(who, "admin")
        return store.create_profile(body)

    @app.get(
        "/api/v1/profiles",
        responses=ERRORS,
        name="profiles_list",
        response_model=list[ProfileOut],
        tags=["profiles"],
    )
    def list_profiles(who: Who) -> list[dict[str, Any]]:
        """Every boot profile (admin)."""
        need(who, "admin")
        return store.list_profiles()

    # -- machines -------------------------------------------------------------

    @app.post(
        "/api/v1/machines",
        responses=ERRORS,
        name="machines_create",
        response_model=MachineOut,
        status_code=201,
        tags=["machines"],
    )
    def create_machine(body: MachineIn, who: Who) -> dict[str, Any]:
        """Define a machine (admin); it starts Pending."""
        need(who, "admin")
        return store.create_machine(body)

    @app.get(
        "/api/v1/machines",
        responses=ERRORS,
        name="machines_list",
        response_model=list[MachineOut],
        tags=["machines"],
    )
    def list_machines(who: Who, cluster: str | None = None) -> list[dict[str, Any]]:
        """Every machine, or those of `?cluster=` (admin)."""
        need(who, "admin")
        return store.list_machines(cluster)

    @app.get(
        "/api/v1/machines/{mac}",
        responses=ERRORS,
        name="machine_get",
        response_model=MachineOut,
        tags=["machines"],
    )
    def get_machine(mac: str, who: Who) -> dict[str, Any]:
        """One machine with state, reasons and facts (admin)."""
        need(who, "admin")
        return store.get_machine(_path_mac(mac))

    @app.get(
        "/api/v1/machines/{mac}/boot",
        responses=ERRORS,
        name="boot",
        response_model=BootData,
        tags=["boot"],
    )
    def boot(mac: str, request: Request, who: Who) -> dict[str, Any]:
        """Boot data for a MAC (a proxy serving it, or admin); mints a one-time join token."""
        need(who, "proxy", "admin")
        clean = _path_mac(mac)
        if who.kind == "admin":
            machine = store.get_machine(clean)
            served = [
                p["name"] for p in store.list_proxies() if machine["cluster"] in p["clusters"]
            ]
            proxy = served[0] if served else ""
            if not proxy:
                raise Forbidden(f"no proxy serves cluster {machine['cluster']!r}; register one")
        else:
            proxy = who.name
        return store.boot(clean, proxy, base_url(request))

    # -- proxies --------------------------------------------------------------

    @app.post(
        "/api/v1/proxies",
        responses=ERRORS,
        name="proxies_create",
        response_model=ProxyToken,
        status_code=201,
        tags=["proxies"],
    )
    def create_proxy(body: ProxyIn, who: Who) -> dict[str, str]:
        """Register a Boot Proxy (admin); the answer holds its token, shown once."""
        need(who, "admin")
        return store.create_proxy(body)

    @app.get(
        "/api/v1/proxies",
        responses=ERRORS,
        name="proxies_list",
        response_model=list[ProxyOut],
        tags=["proxies"],
    )
    def list_proxies(who: Who) -> list[dict[str, Any]]:
        """Every proxy with its last heartbeat (admin)."""
        need(who, "admin")
        return store.list_proxies()

    def own_proxy(who: Principal, name: str) -> None:
        need(who, "proxy", "admin")
        if who.kind == "proxy" and who.name != name:
            raise Forbidden(f"a proxy token for {who.name!r} cannot act as proxy {name!r}")

    @app.post(
        "/api/v1/proxies/{name}/heartbeat",
        responses=ERRORS,
        name="heartbeat",
        response_model=Ok,
        tags=["proxies"],
    )
    def heartbeat(name: str, body: Heartbeat, who: Who) -> dict[str, bool]:
        """A proxy says it is alive, with its version and segments."""
        own_proxy(who, name)
        store.proxy_clusters(name)
        store.heartbeat(name, body)
        return {"ok": True}

    @app.get(
        "/api/v1/proxies/{name}/assignments",
        responses=ERRORS,
        name="assignments",
        response_model=Assignments,
        tags=["proxies"],
        openapi_extra={
            "responses": {"304": {"description": "nothing changed within `wait` seconds"}}
        },
    )
    async def assignments(
        name: str,
        request: Request,
        response: Response,
        who: Who,
        wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0.0,
    ) -> Any:
        """The MACs this proxy serves. With If-None-Match and `?wait=S`, long-poll.

        Answers 200 as soon as the assignments differ from the given ETag
        (woken by the store's change notification, so within milliseconds),
        or 304 after `wait` seconds without a change.
        """
        own_proxy(who, name)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        known = request.headers.get("if-none-match")
        while True:
            seen = notifier.generation
            revision, items = await run_in_threadpool(store.assignments, name)
            etag = _etag(items)
            remaining = deadline - loop.time()
            if known != etag:
                response.headers["ETag"] = etag
                return {"revision": revision, "assignments": items}
            if remaining <= 0:
                return Response(status_code=304, headers={"ETag": etag})
            # Wake at least once a second to notice a proxy that hung up.
            woke = await notifier.wait(seen, min(remaining, 1.0))
            if woke == seen and await request.is_disconnected():
                return Response(status_code=304, headers={"ETag": etag})

    # -- nodes ----------------------------------------------------------------

    @app.post(
        "/api/v1/nodes/register",
        responses=ERRORS,
        name="register",
        response_model=RegisterOut,
        tags=["nodes"],
    )
    def register(body: RegisterIn, who: Who, creds: Credentials) -> dict[str, Any]:
        """A node phones home with its join token and hardware facts.

        A failed requirement is data, not an error: HTTP 200 with
        `state: Rejected` and the reasons.
        """
        need(who, "join")
        assert creds is not None  # `who` resolved, so a token was sent
        return store.register(creds.credentials, body)

    @app.post(
        "/api/v1/nodes/{mac}/ready",
        responses=ERRORS,
        name="ready",
        response_model=MachineOut,
        tags=["nodes"],
    )
    def ready(mac: str, who: Who) -> dict[str, Any]:
        """A registered node reports it is ready (its node token)."""
        clean = _path_mac(mac)
        need(who, "node", "admin")
        if who.kind == "node":
            if who.name != clean:
                raise Forbidden(f"this node token belongs to {who.name}, not {clean}")
            if who.state != "active":
                raise Forbidden("node token superseded by a newer registration; use the latest")
        machine = store.ready(clean)
        if dns is not None:
            _place_in_dns(dns, store, machine, placed)
        return machine

    # -- conflicts, events, state, faults ------------------------------------

    @app.post(
        "/api/v1/conflicts",
        responses=ERRORS,
        name="conflicts_report",
        response_model=ConflictOut,
        status_code=201,
        tags=["conflicts"],
    )
    def report_conflict(body: ConflictIn, who: Who) -> dict[str, Any]:
        """A proxy reports another ProxyDHCP answering a MAC it serves."""
        need(who, "proxy")
        return store.add_conflict(who.name, body)

    @app.get(
        "/api/v1/conflicts",
        responses=ERRORS,
        name="conflicts_list",
        response_model=list[ConflictOut],
        tags=["conflicts"],
    )
    def list_conflicts(who: Who) -> list[dict[str, Any]]:
        """Every conflict report (admin)."""
        need(who, "admin")
        return store.conflicts()

    @app.get(
        "/api/v1/events",
        responses=ERRORS,
        name="events",
        response_model=list[Event],
        tags=["test hooks"],
    )
    def events(
        who: Who,
        since: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=100000)] = 10000,
    ) -> list[dict[str, Any]]:
        """The append-only event log after `since` (admin)."""
        need(who, "admin")
        return store.events(since, limit)

    @app.get("/api/v1/state", responses=ERRORS, name="state", tags=["test hooks"])
    def state(who: Who) -> dict[str, Any]:
        """Everything at once, for harness assertions and debugging (admin)."""
        need(who, "admin")
        return {
            "revision": store.revision(),
            "clusters": store.list_clusters(),
            "machines": store.list_machines(),
            "profiles": store.list_profiles(),
            "artifacts": store.list_artifacts(),
            "proxies": store.list_proxies(),
            "conflicts": store.conflicts(),
            "faults": [f.model_dump() for f in fault_table.all()],
        }

    def fault_view() -> dict[str, Any]:
        names = sorted({getattr(r, "name", "") for r in routes} - {""})
        return {"faults": fault_table.all(), "endpoints": ["*", *names]}

    @app.get(
        "/api/v1/faults",
        responses=ERRORS,
        name="faults_get",
        response_model=Faults,
        tags=["test hooks"],
    )
    def get_faults(who: Who) -> dict[str, Any]:
        """The active faults and the route names they can target (admin)."""
        need(who, "admin")
        return fault_view()

    @app.put(
        "/api/v1/faults",
        responses=ERRORS,
        name="faults_set",
        response_model=Faults,
        tags=["test hooks"],
    )
    def set_fault(body: FaultIn, who: Who) -> dict[str, Any]:
        """Switch on (or, all zero, off) a fault for one route name or `*` (admin)."""
        need(who, "admin")
        known = set(fault_view()["endpoints"])
        if body.endpoint not in known:
            raise _field_error(
                "body.endpoint", f"unknown route {body.endpoint!r}; use one of {sorted(known)}"
            )
        fault_table.set(body)
        store.record_event("fault.set", body.endpoint, **body.model_dump())
        log("fault_set", **body.model_dump())
        return fault_view()

    @app.delete(
        "/api/v1/faults",
        responses=ERRORS,
        name="faults_clear",
        response_model=Faults,
        tags=["test hooks"],
    )
    def clear_faults(who: Who) -> dict[str, Any]:
        """Remove every fault (admin)."""
        need(who, "admin")
        fault_table.clear()
        store.record_event("fault.cleared", "*")
        log("faults_cleared")
        return fault_view()

    return app


def _etag(items: list[dict[str, str]]) -> str:
    """A content ETag: equal assignments give equal tags across restarts."""
    digest = hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:32]}"'


def _path_mac(mac: str) -> str:
    try:
        return normalise_mac(mac)
    except ValueError as exc:
        raise _field_error("path.mac", str(exc)) from exc


class _FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _field_error(field: str, message: str) -> _FieldError:
    return _FieldError(field, message)


def _error(
    status: int,
    error: str,
    detail: str,
    fields: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "detail": detail}
    if fields is not None:
        body["fields"] = fields
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    """Every error answer is `{"error", "detail"}`; 422s name the field."""

    @app.exception_handler(ControlPlaneError)
    async def on_cp_error(_: Request, exc: ControlPlaneError) -> JSONResponse:
        fields = None
        if isinstance(exc, InvalidReference):
            fields = [{"loc": ["body", exc.field], "msg": exc.detail, "type": "reference"}]
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.error, exc.detail, fields, headers)

    @app.exception_handler(_FieldError)
    async def on_field_error(_: Request, exc: _FieldError) -> JSONResponse:
        loc = exc.field.split(".")
        return _error(
            422,
            "validation failed",
            f"{exc.field}: {exc.message}",
            [{"loc": loc, "msg": exc.message, "type": "value_error"}],
        )

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        for err in errors:
            if err.get("type") == "json_invalid":
                where = err.get("ctx", {}).get("error", "")
                return _error(
                    400,
                    "malformed JSON",
                    f"the request body is not valid JSON ({where}); "
                    "send a JSON object with Content-Type: application/json",
                )
        fields = [
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in errors
        ]
        detail = "; ".join(f"{'.'.join(f['loc'])}: {f['msg']}" for f in fields)
        return _error(422, "validation failed", detail, fields)

    @app.exception_handler(HTTPException)
    async def on_http(_: Request, exc: HTTPException) -> JSONResponse:
        names = {
            400: "bad request",
            404: "not found",
            405: "method not allowed",
            413: "request body too large",
        }
        return _error(
            exc.status_code,
            names.get(exc.status_code, "error"),
            str(exc.detail),
            headers=dict(exc.headers) if exc.headers else None,
        )
