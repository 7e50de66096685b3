"""`mailtickets apikey …` and `mailtickets api` (serve the HTTP API alone)."""

from __future__ import annotations

import asyncio
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.api.keys import create_api_key, list_api_keys, revoke_api_key
from mailtickets.cli.common import CliState, echo_json, pass_state, run_with_store
from mailtickets.db import transaction
from mailtickets.errors import ConfigurationError, NotFound


@click.group()
def apikey() -> None:
    """API keys for the HTTP API."""


@apikey.command("create")
@click.option("--name", required=True, help="Who or what uses the key (also the HTTP Basic user name).")
@click.option("--read-only", is_flag=True, help="The key may only read (GET).")
@pass_state
def apikey_create(state: CliState, name: str, read_only: bool) -> None:
    """Create a key; it is printed once, alone on the last line, and stored only as a hash."""

    async def work(sessions: async_sessionmaker[AsyncSession]) -> str:
        async with transaction(sessions) as session:
            return (await create_api_key(session, name, read_only=read_only))[1]

    token = run_with_store(state.settings, work)
    kind = "read-only " if read_only else ""
    click.echo(f"{kind}API key {name!r} created; store it now, it is not shown again:")
    click.echo(token)


@apikey.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON array.")
@pass_state
def apikey_list(state: CliState, as_json: bool) -> None:
    """List the keys by name: read-only or not, revoked or not, created and last used."""

    async def work(sessions: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
        async with sessions() as session:
            return [
                {
                    "name": key.name,
                    "read_only": key.read_only,
                    "revoked": key.revoked,
                    "created_at": key.created_at.isoformat() if key.created_at else None,
                    "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
                }
                for key in await list_api_keys(session)
            ]

    rows = run_with_store(state.settings, work)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no API keys: create one with `mailtickets apikey create --name NAME`")
    for row in rows:
        flags = ", ".join(f for f, on in (("read-only", row["read_only"]), ("revoked", row["revoked"])) if on)
        used = f"last used {row['last_used_at']}" if row["last_used_at"] else "never used"
        click.echo(f"{row['name']:<24} {flags or 'read-write':<20} created {row['created_at']}, {used}")


@apikey.command("revoke")
@click.option("--name", required=True)
@pass_state
def apikey_revoke(state: CliState, name: str) -> None:
    """Revoke a key by name."""

    async def work(sessions: async_sessionmaker[AsyncSession]) -> bool:
        async with transaction(sessions) as session:
            return await revoke_api_key(session, name)

    if not run_with_store(state.settings, work):
        raise NotFound(f"no API key named {name!r}")
    click.echo(f"API key {name!r} revoked")


@click.command("api")
@pass_state
def api(state: CliState) -> None:
    """Serve the HTTP API alone on MAILTICKETS_HTTP_BIND (default 127.0.0.1:8000) until SIGTERM or Ctrl-C."""
    from mailtickets.log_setup import configure_logging
    from mailtickets.service.app import run_api_alone

    if not state.settings.http_bind:
        raise ConfigurationError("http_bind is empty: set MAILTICKETS_HTTP_BIND to host:port")
    configure_logging(state.settings)
    asyncio.run(run_api_alone(state.settings))


COMMANDS = [apikey, api]
