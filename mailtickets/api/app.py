"""The HTTP API application: routers under /api/v1, API-key auth, one error shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.api import clients, contacts, operations, quarantine, rules, tickets
from mailtickets.api.deps import AppContext, Context, get_reader, reject_nul
from mailtickets.api.errors import ApiError, install_error_handlers
from mailtickets.clock import Clock
from mailtickets.console import install_console
from mailtickets.db import ping
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.settings import Settings

API_PREFIX = "/api/v1"
OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # the health checks: the only answers without a key
# The three ways to present a key (mailtickets.api.auth), declared so that clients and docs know them.
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer KEY"},
    "basic": {"type": "http", "scheme": "basic", "description": "the key's name as the user, the key as password"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "X-API-Key: KEY"},
}


class MailticketsApi(FastAPI):
    """FastAPI whose OpenAPI document says that every operation but the health checks needs an API key."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            _declare_keys(super().openapi())  # FastAPI keeps the document it returns: amend it once
        return super().openapi()


def _declare_keys(schema: dict[str, Any]) -> None:
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    any_key: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]
    for path, methods in schema["paths"].items():
        if path not in OPEN_PATHS:
            for operation in methods.values():
                operation["security"] = any_key


def _document_router(app: FastAPI) -> APIRouter:
    """The OpenAPI document and its docs page.  A browser asks for the key once (HTTP Basic, name:KEY)
    and sends it again when the page fetches the document."""
    router = APIRouter(include_in_schema=False)

    @router.get("/openapi.json")
    async def document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=f"{API_PREFIX}/openapi.json", title="mailtickets API")

    return router


class Health(BaseModel):
    status: str


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Health, responses={503: {"description": "Database unreachable"}})
    async def healthz(context: Context) -> Health:
        """Liveness and database reachability; answers without a key (as does /readyz)."""
        try:
            await ping(context.sessions)  # never queues behind a writer: answers while another process writes
        except (SQLAlchemyError, OSError) as exc:
            raise ApiError(503, "unavailable", "database unreachable") from exc
        return Health(status="ok")

    return router


def create_app(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    *,
    pipeline: Pipeline | None = None,
) -> FastAPI:
    """The API over the given store; pass `mailtickets run`'s pipeline to share its rule cache."""
    app = MailticketsApi(
        title="mailtickets",
        version="1",
        openapi_url=None,  # served below, behind a key like the rest of /api/v1
        docs_url=None,
        redoc_url=None,
    )
    pipeline = pipeline or Pipeline(settings, sessions, clock)
    app.state.context = AppContext(settings=settings, sessions=sessions, clock=clock, pipeline=pipeline)
    install_error_handlers(app)
    # The key first: without one, nothing under /api/v1 answers but 401 (not even a 422 on the query).
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(get_reader), Depends(reject_nul)])
    for module in (contacts, clients, tickets, rules, quarantine):
        api.include_router(module.router)
    api.include_router(_document_router(app))
    app.include_router(api)
    app.include_router(_health_router())
    app.include_router(operations.router)
    install_console(app, settings, clock)  # /admin/: signed in with a password, not an API key
    return app
