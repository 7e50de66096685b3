"""Serving the API with uvicorn: alone (`mailtickets api`) or inside `mailtickets run`'s event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.api.app import create_app
from mailtickets.clock import Clock, SystemClock
from mailtickets.db import create_engine, session_factory
from mailtickets.pipeline import Pipeline
from mailtickets.settings import Settings


def parse_bind(bind: str) -> tuple[str, int]:
    """'host:port' (IPv6 as '[::1]:8000') → (host, port)."""
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"http_bind must be host:port, not {bind!r}")
    return host.strip("[]"), int(port)


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves the signals to its host (the composition root owns SIGTERM)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def build_server(settings: Settings, app: FastAPI, *, embedded: bool = False) -> uvicorn.Server:
    host, port = parse_bind(settings.http_bind)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off")
    return EmbeddedServer(config) if embedded else uvicorn.Server(config)


async def run_api(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    pipeline: Pipeline,
    stop: asyncio.Event,
) -> None:
    """A `mailtickets run` component: serve until `stop` is set, then finish the requests in hand."""
    server = build_server(settings, create_app(settings, sessions, clock, pipeline=pipeline), embedded=True)
    serving = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await serving


async def serve(settings: Settings) -> None:
    """Serve the API alone until interrupted (`mailtickets api`)."""
    engine = create_engine(settings.database_url)
    try:
        app = create_app(settings, session_factory(engine), SystemClock())
        await build_server(settings, app).serve()
    finally:
        await engine.dispose()


def serve_forever(settings: Settings) -> None:
    asyncio.run(serve(settings))
