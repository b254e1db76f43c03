"""Boot profiles: which kernel, initrd and command line a machine boots (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..deps import ERRORS, Ctx, Who, need
from ..models import ProfileIn, ProfileOut

router = APIRouter(prefix="/api/v1/profiles", tags=["profiles"], responses=ERRORS)


@router.post("", name="profiles_create", response_model=ProfileOut, status_code=201)
def create_profile(body: ProfileIn, who: Who, ctx: Ctx) -> dict[str, Any]:
    """Create or replace a boot profile (admin)."""
    need(who, "admin")
    return ctx.store.create_profile(body)


@router.get("", name="profiles_list", response_model=list[ProfileOut])
def list_profiles(who: Who, ctx: Ctx) -> list[dict[str, Any]]:
    """Every boot profile (admin)."""
    need(who, "admin")
    return ctx.store.list_profiles()
