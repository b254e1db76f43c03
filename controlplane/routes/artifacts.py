"""Artifacts: kernel and initrd bytes, uploaded by an admin, fetched by proxies."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from ..deps import ERRORS, Context, Ctx, Who, need
from ..http_errors import FieldError
from ..models import ArtifactOut, artifact_name
from ..store import Principal

router = APIRouter(prefix="/api/v1/artifacts", tags=["artifacts"], responses=ERRORS)
_BINARY_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("/{name}", name="artifact_upload", response_model=ArtifactOut, status_code=201,
             openapi_extra=_BINARY_BODY)
async def upload_artifact(name: str, request: Request, who: Who, ctx: Ctx) -> dict[str, Any]:
    """Upload kernel or initrd bytes (admin); no size limit here."""
    need(who, "admin")
    try:
        artifact_name(name)
    except ValueError as exc:
        raise FieldError("path.name", str(exc)) from exc
    # Streamed to a temporary file: kernels and initrds need not fit in memory.
    tmp = ctx.store.upload_path(name)
    digest = hashlib.sha256()
    size = 0
    try:
        with tmp.open("wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        return await run_in_threadpool(
            ctx.store.commit_artifact, name, tmp, size, digest.hexdigest()
        )
    finally:
        tmp.unlink(missing_ok=True)


@router.get("", name="artifacts_list", response_model=list[ArtifactOut])
def list_artifacts(who: Who, ctx: Ctx) -> list[dict[str, Any]]:
    """Metadata of every artifact (admin or proxy)."""
    need(who, "admin", "proxy")
    return ctx.store.list_artifacts()


@router.get("/{name}", name="artifact_get", response_class=FileResponse)
def get_artifact(name: str, request: Request, who: Who, ctx: Ctx) -> Response:
    """Download an artifact (proxy or admin) with ETag = its sha256."""
    return _artifact_response(ctx, name, request, who)


@router.head("/{name}", name="artifact_head")
def head_artifact(name: str, request: Request, who: Who, ctx: Ctx) -> Response:
    """Size and ETag of an artifact without the bytes."""
    return _artifact_response(ctx, name, request, who)


def _artifact_response(ctx: Context, name: str, request: Request, who: Principal) -> Response:
    """The file with its ETag, or 304 when the client already holds this sha256."""
    need(who, "admin", "proxy")
    meta, path = ctx.store.artifact(name)
    etag = f'"{meta["sha256"]}"'
    headers = {"ETag": etag, "X-Checksum-Sha256": meta["sha256"]}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type="application/octet-stream", headers=headers)
