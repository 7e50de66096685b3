"""`mailtickets quarantine list|show|release|discard`: the held messages, for admins without the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.cli.common import CliState, echo_json, pass_state, run_with_store
from mailtickets.db import transaction
from mailtickets.directory import get_client_by_name
from mailtickets.ingest.result import IngestResult
from mailtickets.models import QuarantineState
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.pipeline.quarantine import discard_held, held_raw_bytes, list_held, show_held
from mailtickets.storage import FileStore

STATES = [s.value for s in QuarantineState]


@click.group("quarantine")
def quarantine() -> None:
    """Messages held for a person to decide (unknown senders, unparseable mail, rules)."""


@quarantine.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--state", "wanted", type=click.Choice([*STATES, "all"]), default="held", show_default=True)
@pass_state
def quarantine_list(state: CliState, as_json: bool, wanted: str) -> None:
    """List quarantined messages, newest first."""
    which = None if wanted == "all" else QuarantineState(wanted)

    async def work(sessions: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
        async with sessions() as session:
            return await list_held(session, which)

    rows = run_with_store(state.settings, work)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("nothing in quarantine")
    for row in rows:
        click.echo(f"{row['id']:>6}  {row['state']:<9} {row['sender'] or '-':<32.32} {row['subject'] or ''}")
        click.echo(f"        {row['received_at'] or ''}  {row['reason'] or ''}")


@quarantine.command("show")
@click.argument("inbound_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--raw",
    "raw_file",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the message's bytes, exactly as they arrived, to FILE (nothing is printed but a line).",
)
@pass_state
def quarantine_show(state: CliState, inbound_id: int, as_json: bool, raw_file: Path | None) -> None:
    """Show a held message: who sent it, why it is held, its headers and a safe rendering of its text."""
    raw_store = FileStore(state.settings.raw_dir)
    if raw_file is not None:
        _save_raw(state, raw_store, inbound_id, raw_file)
        return

    async def work(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
        async with sessions() as session, Pipeline(state.settings, sessions) as pipeline:
            return await show_held(session, raw_store, inbound_id, pipeline.parser)

    detail = run_with_store(state.settings, work)
    if as_json:
        echo_json(detail)
        return
    for key in ("id", "received_at", "source", "sender", "to", "subject", "message_id", "reason", "size"):
        value = ", ".join(detail[key]) if isinstance(detail[key], list) else detail[key]
        click.echo(f"{key + ':':<12} {value if value is not None else '-'}")
    if detail["headers"]:
        click.echo("\nheaders:")
    for name, value in detail["headers"]:
        click.echo(f"  {name}: {value}")
    click.echo(f"\n{detail['text']}")


def _save_raw(state: CliState, raw_store: FileStore, inbound_id: int, target: Path) -> None:
    async def work(sessions: async_sessionmaker[AsyncSession]) -> bytes:
        async with sessions() as session:
            return await held_raw_bytes(session, raw_store, inbound_id)

    raw = run_with_store(state.settings, work)
    target.write_bytes(raw)
    click.echo(f"message {inbound_id}: {len(raw)} bytes written to {target}")


@quarantine.command("release")
@click.argument("inbound_id", type=int)
@click.option("--client", "client_name", default=None, help="File the ticket for this client (by name).")
@pass_state
def quarantine_release(state: CliState, inbound_id: int, client_name: str | None) -> None:
    """Release a held message through the pipeline: it becomes a ticket or a reply like any other."""

    async def work(sessions: async_sessionmaker[AsyncSession]) -> IngestResult:
        client_id = None
        if client_name is not None:
            async with sessions() as session:
                client_id = (await get_client_by_name(session, client_name)).id
        async with Pipeline(state.settings, sessions) as pipeline:
            return await pipeline.release(inbound_id, client_id)

    result = run_with_store(state.settings, work)
    click.echo(f"message {inbound_id} released: {result.outcome.value} {result.ticket or '-'}")


@quarantine.command("discard")
@click.argument("inbound_id", type=int)
@pass_state
def quarantine_discard(state: CliState, inbound_id: int) -> None:
    """Discard a held message (its record stays, marked discarded, for the audit trail)."""

    async def work(sessions: async_sessionmaker[AsyncSession]) -> None:
        async with transaction(sessions) as session:
            await discard_held(session, inbound_id)

    run_with_store(state.settings, work)
    click.echo(f"message {inbound_id} discarded")


COMMANDS = [quarantine]
