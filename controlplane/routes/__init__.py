"""The Control Plane API v1, one `APIRouter` per resource.

`ROUTERS` is the order they are included in, and so the order of `paths` in the
committed OpenAPI document. Each route's `name` is its operationId and the scope
fault injection targets (`PUT /api/v1/faults {"endpoint": "assignments"}`).
"""

from __future__ import annotations

from fastapi import APIRouter

from . import artifacts, clusters, conflicts, hooks, machines, meta, nodes, profiles, proxies

ROUTERS: tuple[APIRouter, ...] = (
    meta.router,
    clusters.router,
    artifacts.router,
    profiles.router,
    machines.router,
    proxies.router,
    nodes.router,
    conflicts.router,
    hooks.router,
)
