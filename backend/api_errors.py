"""One structured error body everywhere: ``{"error": code, "detail": message, "hint": what to do | null}``.

Every failure the server answers — validation errors (422), unknown paths (404), wrong methods (405), missing
token (401), oversized bodies (413), wrong content types (415), bad input from pipelines (400) and unexpected
failures (500) — goes through :func:`install_error_handlers` or :func:`error_response`, so clients parse one shape.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.errors import BatonError, NotAvailableError

log = logging.getLogger(__name__)

#: Error codes for plain HTTP statuses raised by the framework (unknown path, wrong method, ...).
_STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
    429: "too_many_jobs", 500: "internal_error", 503: "unavailable",
}  # fmt: skip


class ErrorBody(BaseModel):
    """The error body of every non-2xx answer."""

    error: str = Field(description="machine-readable code, e.g. invalid_request, not_found, payload_too_large")
    detail: str = Field(description="what went wrong, for a person")
    hint: str | None = Field(None, description="what to do about it")


class ApiError(StarletteHTTPException):
    """An HTTP error with a code and a hint; raise it anywhere in a request (also while reading the body)."""

    def __init__(self, status_code: int, error: str, detail: str, hint: str | None = None) -> None:
        super().__init__(status_code=status_code, detail=detail)
        self.error = error
        self.hint = hint


def error_response(status_code: int, error: str, detail: str, hint: str | None = None) -> JSONResponse:
    """A :class:`JSONResponse` with the structured error body."""
    return JSONResponse(ErrorBody(error=error, detail=detail, hint=hint).model_dump(), status_code=status_code)


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception type the app can meet to the structured error body."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status_code, exc.error, str(exc.detail), exc.hint)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        hint = None
        if exc.status_code == 404:
            hint = "see GET /openapi.json for the routes"
        elif exc.status_code == 405:
            hint = "see GET /openapi.json for the methods each route accepts"
        response = error_response(exc.status_code, code, str(exc.detail), hint)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        return error_response(422, "invalid_request", _validation_detail(exc), "see GET /openapi.json for the schema")

    @app.exception_handler(NotAvailableError)
    async def _not_available(request: Request, exc: NotAvailableError):
        return error_response(503, "not_available", str(exc), "see GET /capabilities for what this server can do")

    @app.exception_handler(BatonError)
    async def _baton_error(request: Request, exc: BatonError):
        return error_response(400, "bad_input", str(exc))

    @app.exception_handler(ValueError)
    async def _value_error(request: Request, exc: ValueError):
        return error_response(400, "bad_input", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", f"{type(exc).__name__}: {exc}", "see the server log")


#: OpenAPI ``responses=`` entry documenting the error body for the usual statuses.
ERROR_RESPONSES = {
    status: {"model": ErrorBody, "description": code.replace("_", " ")}
    for status, code in _STATUS_CODES.items()
    if status in (400, 401, 404, 413, 415, 422)
}
