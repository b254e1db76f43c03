"""Open routes: liveness and the Control Plane's clock (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import Ctx
from ..models import Health, TimeOut

router = APIRouter(tags=["meta"])


@router.get("/healthz", name="healthz", response_model=Health)
def healthz(ctx: Ctx) -> dict[str, str]:
    """Liveness: the service answers and its store is open."""
    ctx.store.revision()
    return {"status": "ok"}


@router.get("/api/v1/time", name="time", response_model=TimeOut)
def get_time(ctx: Ctx) -> dict[str, float]:
    """The Control Plane's clock, for the node agent's ±1 s check."""
    return {"unix": ctx.store.clock()}
