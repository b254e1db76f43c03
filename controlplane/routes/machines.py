"""Machines (admin) and their boot data (a proxy serving the MAC, or admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..deps import ERRORS, Ctx, Who, base_url, need, path_mac
from ..errors import Forbidden
from ..models import BootArchIn, BootData, MachineIn, MachineOut

# Tags per route: the boot route is documented under its own tag.
router = APIRouter(prefix="/api/v1/machines", responses=ERRORS)


@router.post("", name="machines_create", response_model=MachineOut, status_code=201,
             tags=["machines"])
def create_machine(body: MachineIn, who: Who, ctx: Ctx) -> dict[str, Any]:
    """Define a machine (admin); it starts Pending."""
    need(who, "admin")
    return ctx.store.create_machine(body)


@router.get("", name="machines_list", response_model=list[MachineOut], tags=["machines"])
def list_machines(who: Who, ctx: Ctx, cluster: str | None = None) -> list[dict[str, Any]]:
    """Every machine, or those of `?cluster=` (admin)."""
    need(who, "admin")
    return ctx.store.list_machines(cluster)


@router.get("/{mac}", name="machine_get", response_model=MachineOut, tags=["machines"])
def get_machine(mac: str, who: Who, ctx: Ctx) -> dict[str, Any]:
    """One machine with state, reasons and facts (admin)."""
    need(who, "admin")
    return ctx.store.get_machine(path_mac(mac))


@router.get("/{mac}/boot", name="boot", response_model=BootData, tags=["boot"])
def boot(mac: str, request: Request, who: Who, ctx: Ctx) -> dict[str, Any]:
    """Boot data for a MAC (a proxy serving it, or admin); mints a one-time join token."""
    need(who, "proxy", "admin")
    clean = path_mac(mac)
    if who.kind == "admin":
        machine = ctx.store.get_machine(clean)
        served = [
            p["name"] for p in ctx.store.list_proxies() if machine["cluster"] in p["clusters"]
        ]
        proxy = served[0] if served else ""
        if not proxy:
            raise Forbidden(f"no proxy serves cluster {machine['cluster']!r}; register one")
    else:
        proxy = who.name
    return ctx.store.boot(clean, proxy, base_url(ctx, request))


@router.post("/{mac}/boot-arch", name="boot_arch", response_model=MachineOut, tags=["boot"])
def boot_arch(mac: str, body: BootArchIn, who: Who, ctx: Ctx) -> dict[str, Any]:
    """A proxy serving the MAC reports the PXE architecture it saw; not x86-64 → Rejected."""
    need(who, "proxy")
    return ctx.store.boot_arch(path_mac(mac), who.name, body.pxe_arch, body.segment)
