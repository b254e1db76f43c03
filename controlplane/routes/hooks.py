"""Test hooks (admin): the event log, all state at once, and run-time faults."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ..deps import ERRORS, Context, Ctx, Who, need
from ..http_errors import FieldError
from ..models import Event, FaultIn, Faults

router = APIRouter(prefix="/api/v1", tags=["test hooks"], responses=ERRORS)


@router.get("/events", name="events", response_model=list[Event])
def events(
    who: Who,
    ctx: Ctx,
    since: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100000)] = 10000,
) -> list[dict[str, Any]]:
    """The append-only event log after `since` (admin)."""
    need(who, "admin")
    return ctx.store.events(since, limit)


@router.get("/state", name="state")
def state(who: Who, ctx: Ctx) -> dict[str, Any]:
    """Everything at once, for harness assertions and debugging (admin)."""
    need(who, "admin")
    store = ctx.store
    return {
        "revision": store.revision(),
        "clusters": store.list_clusters(),
        "machines": store.list_machines(),
        "profiles": store.list_profiles(),
        "artifacts": store.list_artifacts(),
        "proxies": store.list_proxies(),
        "conflicts": store.conflicts(),
        "faults": [f.model_dump() for f in ctx.faults.all()],
    }


@router.get("/faults", name="faults_get", response_model=Faults)
def get_faults(who: Who, ctx: Ctx) -> dict[str, Any]:
    """The active faults and the route names they can target (admin)."""
    need(who, "admin")
    return _fault_view(ctx)


@router.put("/faults", name="faults_set", response_model=Faults)
def set_fault(body: FaultIn, who: Who, ctx: Ctx) -> dict[str, Any]:
    """Switch on (or, all zero, off) a fault for one route name or `*` (admin)."""
    need(who, "admin")
    known = set(_fault_view(ctx)["endpoints"])
    if body.endpoint not in known:
        raise FieldError(
            "body.endpoint", f"unknown route {body.endpoint!r}; use one of {sorted(known)}"
        )
    ctx.faults.set(body)
    ctx.store.record_event("fault.set", body.endpoint, **body.model_dump())
    ctx.log("fault_set", **body.model_dump())
    return _fault_view(ctx)


@router.delete("/faults", name="faults_clear", response_model=Faults)
def clear_faults(who: Who, ctx: Ctx) -> dict[str, Any]:
    """Remove every fault (admin)."""
    need(who, "admin")
    ctx.faults.clear()
    ctx.store.record_event("fault.cleared", "*")
    ctx.log("faults_cleared")
    return _fault_view(ctx)


def _fault_view(ctx: Context) -> dict[str, Any]:
    """The active faults and every route name a fault may target (`*` first)."""
    return {"faults": ctx.faults.all(), "endpoints": ["*", *ctx.route_names]}
