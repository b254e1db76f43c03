"""Clusters: what a site expects, and whether it is Ready (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..deps import ERRORS, Ctx, Who, need
from ..models import ClusterIn, ClusterOut

router = APIRouter(prefix="/api/v1/clusters", tags=["clusters"], responses=ERRORS)


@router.post("", name="clusters_create", response_model=ClusterOut, status_code=201)
def create_cluster(body: ClusterIn, who: Who, ctx: Ctx) -> dict[str, Any]:
    """Create a cluster (admin)."""
    need(who, "admin")
    return ctx.store.create_cluster(body)


@router.get("", name="clusters_list", response_model=list[ClusterOut])
def list_clusters(who: Who, ctx: Ctx) -> list[dict[str, Any]]:
    """Every cluster with its status (admin)."""
    need(who, "admin")
    return ctx.store.list_clusters()


@router.get("/{name}", name="cluster_get", response_model=ClusterOut)
def get_cluster(name: str, who: Who, ctx: Ctx) -> dict[str, Any]:
    """One cluster: Ready when all its expected nodes are; `missing` says why not."""
    need(who, "admin")
    return ctx.store.get_cluster(name)
