"""Serving the API with uvicorn as a component: of `mailtickets run`, or alone (`mailtickets api`, app.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.api.app import create_app
from mailtickets.clock import Clock
from mailtickets.pipeline.ingest import Pipeline
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


def build_server(settings: Settings, app: FastAPI) -> uvicorn.Server:
    host, port = parse_bind(settings.http_bind)
    return EmbeddedServer(uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off"))


async def run_api(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    pipeline: Pipeline,
    stop: asyncio.Event,
) -> None:
    """A component of `mailtickets run` (or `api`): serve until `stop` is set, then finish the requests in hand."""
    server = build_server(settings, create_app(settings, sessions, clock, pipeline=pipeline))
    serving = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await serving
