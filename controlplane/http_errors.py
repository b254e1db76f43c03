"""Every error answer is `{"error", "detail"}`; a 422 adds `fields` naming each field.

The store raises `ControlPlaneError`s, routes raise `FieldError` for a bad path or body
value they check themselves, FastAPI raises its own validation and HTTP errors; the
handlers in `EXCEPTION_HANDLERS` give all of them the one body shape clients parse.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.responses import Response

from .errors import ControlPlaneError, InvalidReference

_HTTP_NAMES = {
    400: "bad request",
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
}


class FieldError(Exception):
    """A 422 on one field a route checked itself, e.g. `path.mac` or `body.endpoint`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def error_response(
    status: int,
    error: str,
    detail: str,
    fields: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The one error body: `error`, `detail` and, for validation, `fields`."""
    body: dict[str, Any] = {"error": error, "detail": detail}
    if fields is not None:
        body["fields"] = fields
    return JSONResponse(body, status_code=status, headers=headers)


async def _on_cp_error(_: Request, exc: ControlPlaneError) -> JSONResponse:
    fields = None
    if isinstance(exc, InvalidReference):
        fields = [{"loc": ["body", exc.field], "msg": exc.detail, "type": "reference"}]
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_response(exc.status, exc.error, exc.detail, fields, headers)


async def _on_field_error(_: Request, exc: FieldError) -> JSONResponse:
    return error_response(
        422,
        "validation failed",
        f"{exc.field}: {exc.message}",
        [{"loc": exc.field.split("."), "msg": exc.message, "type": "value_error"}],
    )


async def _on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            where = err.get("ctx", {}).get("error", "")
            return error_response(
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
    return error_response(422, "validation failed", detail, fields)


async def _on_http(_: Request, exc: HTTPException) -> JSONResponse:
    return error_response(
        exc.status_code,
        _HTTP_NAMES.get(exc.status_code, "error"),
        str(exc.detail),
        headers=dict(exc.headers) if exc.headers else None,
    )


EXCEPTION_HANDLERS: dict[int | type[Exception],
                         Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    ControlPlaneError: _on_cp_error,
    FieldError: _on_field_error,
    RequestValidationError: _on_invalid,
    HTTPException: _on_http,
}
