"""`mailtickets quickstart`: a client, its domain and an API key in one idempotent step.

For a first try (the compose quick start calls it): without a client every test mail is quarantined,
and without a key the API docs cannot be opened. Running it again changes nothing and prints no key.
"""

from __future__ import annotations

import click
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets import directory
from mailtickets.api.keys import create_api_key
from mailtickets.cli.common import CliState, pass_state, run_with_store
from mailtickets.db import transaction
from mailtickets.errors import NotFound
from mailtickets.models import ApiKey


@click.command("quickstart")
@click.option("--client", "client_name", required=True, help='The client mail is filed under, e.g. "Acme Corp".')
@click.option("--domain", required=True, help="Its mail domain: mail from any address there opens tickets.")
@click.option("--key-name", default="quickstart", show_default=True, help="The API key's name (Basic user name).")
@pass_state
def quickstart(state: CliState, client_name: str, domain: str, key_name: str) -> None:
    """Create a client with a domain and an API key unless they exist; print what was done."""

    async def work(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
        async with transaction(sessions) as session:
            return [await _client(session, client_name, domain), *await _key(session, key_name)]

    for line in run_with_store(state.settings, work):
        click.echo(line)


async def _client(session: AsyncSession, name: str, domain: str) -> str:
    try:
        client = await directory.get_client_by_name(session, name)
    except NotFound:
        await directory.create_client(session, name, [domain])
        return f"client {name!r} created with domain {domain}"
    await directory.add_domain(session, client.id, domain)
    return f"client {name!r} exists; {domain} is one of its domains"


async def _key(session: AsyncSession, name: str) -> list[str]:
    if await session.scalar(select(ApiKey).where(ApiKey.name == name)) is not None:
        return [f"API key {name!r} exists (its key was shown when it was created; `mailtickets apikey list`)"]
    token = (await create_api_key(session, name))[1]
    return [f"API key {name!r} created; store it now, it is not shown again (Basic user {name!r}):", token]


COMMANDS = [quickstart]
