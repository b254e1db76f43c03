"""Conflicts: a proxy reports another ProxyDHCP answering a MAC it serves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..deps import ERRORS, Ctx, Who, need
from ..models import ConflictIn, ConflictOut

router = APIRouter(prefix="/api/v1/conflicts", tags=["conflicts"], responses=ERRORS)


@router.post("", name="conflicts_report", response_model=ConflictOut, status_code=201)
def report_conflict(body: ConflictIn, who: Who, ctx: Ctx) -> dict[str, Any]:
    """A proxy reports another ProxyDHCP answering a MAC it serves."""
    need(who, "proxy")
    return ctx.store.add_conflict(who.name, body)


@router.get("", name="conflicts_list", response_model=list[ConflictOut])
def list_conflicts(who: Who, ctx: Ctx) -> list[dict[str, Any]]:
    """Every conflict report (admin)."""
    need(who, "admin")
    return ctx.store.conflicts()
