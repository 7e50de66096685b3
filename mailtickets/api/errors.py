"""Every failure becomes one JSON shape, here and nowhere else:

{"error": {"code": "...", "message": "...", "fields": {"field": "why"}}}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mailtickets.directory.validation import FieldConflict
from mailtickets.errors import Conflict, InvalidInput, NotFound, TemporaryError

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A failure the API itself detects (authentication, a missing or malformed body)."""

    def __init__(self, status: int, code: str, message: str, headers: Sequence[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers  # pairs: a name may repeat (one WWW-Authenticate line per scheme)


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: dict[str, str] = {}


class ErrorBody(BaseModel):
    error: ErrorDetail


_DESCRIPTIONS = {
    400: "Nothing sent, or malformed JSON",
    401: "Missing or wrong API key",
    403: "Read-only key used for a write",
    404: "No such resource",
    409: "Conflicts with existing data (the clash is named)",
    413: "The request body is larger than api_max_body_bytes",
    422: "Invalid input: every failing field listed",
    503: "The database is unavailable: try again later",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _DESCRIPTIONS.items()
}

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 401: "unauthorized"}


def error_response(
    status: int,
    code: str,
    message: str,
    fields: dict[str, str] | None = None,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, fields=fields or {}))
    response = JSONResponse(body.model_dump(), status_code=status)
    for name, value in headers.items() if isinstance(headers, Mapping) else headers or ():
        response.headers.append(name, value)
    return response


def _request_fields(exc: RequestValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ()) if part not in ("query", "path", "body", "header")]
        fields.setdefault(".".join(location) or "request", str(error.get("msg", "invalid")))
    return fields


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ApiError):
        raise exc
    return error_response(exc.status, exc.code, str(exc), headers=exc.headers)


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    fields = exc.fields if isinstance(exc, InvalidInput) else {}
    return error_response(422, "validation_failed", str(exc), fields)


async def _request_invalid(_request: Request, exc: Exception) -> JSONResponse:
    fields = _request_fields(exc) if isinstance(exc, RequestValidationError) else {}
    return error_response(422, "validation_failed", "the request is not valid", fields)


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(404, "not_found", str(exc))


async def _conflict(_request: Request, exc: Exception) -> JSONResponse:
    fields = exc.fields if isinstance(exc, FieldConflict) else {}
    return error_response(409, "conflict", str(exc), fields)


async def _temporary(_request: Request, exc: Exception) -> JSONResponse:
    logger.warning("temporary failure: %s", exc)
    return error_response(503, "temporarily_unavailable", "temporary failure, try again later")


async def _store_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    # The database is down, busy or unreachable: ours and temporary, not a bug (no traceback, no SQL logged).
    logger.warning("HTTP API: database unavailable (%s)", type(exc).__name__)
    return error_response(503, "temporarily_unavailable", "temporary failure, try again later")


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
    detail = exc.detail if isinstance(exc, StarletteHTTPException) else "error"
    headers = exc.headers if isinstance(exc, StarletteHTTPException) else None
    return error_response(status, _HTTP_CODES.get(status, "http_error"), str(detail), headers=headers)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    # The API's one boundary for bugs: log with the traceback, answer in the usual shape.
    logger.exception("unhandled error in the HTTP API", exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(InvalidInput, _invalid)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(Conflict, _conflict)
    app.add_exception_handler(TemporaryError, _temporary)
    for unavailable in (OperationalError, InterfaceError, OSError):
        app.add_exception_handler(unavailable, _store_unavailable)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
