"""The admin console under /admin/: server-rendered pages (Jinja2) over the same services as the API.

Agents see the trace, the quarantine and tickets; admins also change rules, clients, contacts and
agents. Every asset is served from `static/` by the app itself: no CDN, no build step.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from mailtickets.clock import Clock
from mailtickets.console import account, agents, clients, login, outbox, quarantine, rules, tickets, trace
from mailtickets.console.auth import LoginLimiter
from mailtickets.console.web import HERE
from mailtickets.settings import Settings

PREFIX = "/admin"


def install_console(app: FastAPI, settings: Settings, clock: Clock) -> None:
    app.state.console_limiter = LoginLimiter(settings, clock)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for module in (login, account, trace, quarantine, rules, tickets, clients, outbox, agents):
        app.include_router(module.router, prefix=PREFIX, include_in_schema=False)
