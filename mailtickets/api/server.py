"""Serving the API with uvicorn as a component: of `mailtickets run`, or alone (`mailtickets api`, app.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.api.app import create_app
from mailtickets.clock import Clock
from mailtickets.errors import CannotListen
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.settings import Settings


def parse_bind(bind: str) -> tuple[str, int]:
    """'host:port' (IPv6 as '[::1]:8000') → (host, port)."""
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"http_bind must be host:port, not {bind!r}")
    return host.strip("[]"), int(port)


def bind_socket(bind: str) -> socket.socket:
    host, port = parse_bind(bind)
    try:
        listening = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as exc:
        raise CannotListen(f"cannot listen on {bind} (http_bind): {os.strerror(exc.errno or 0).lower()}") from exc
    listening.setblocking(False)
    return listening


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
    listening = bind_socket(settings.http_bind)  # bound here: uvicorn would sys.exit() inside its task
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await serving
