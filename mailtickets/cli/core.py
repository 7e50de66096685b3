"""Core commands: database, tickets list/show (the pipe, `mailtickets ingest`, is in cli/pipe.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.cli.common import CliState, echo_json, pass_state, run_with_store
from mailtickets.cli.errors import EX_CONFIG, CliError
from mailtickets.db import create_engine, upgrade
from mailtickets.store_status import describe, parse_database_url, refuse_missing_folder, schema_revision
from mailtickets.tickets.views import ticket_detail, ticket_rows


@click.group()
def db() -> None:
    """Database: schema (upgrade), backup, copy to another database, purge of kept raw mail."""


@db.command("upgrade")
@pass_state
def db_upgrade(state: CliState) -> None:
    """Create the database, or apply schema migrations up to the newest; says which it did."""
    url = state.settings.database_url
    refuse_missing_folder(url)
    before = asyncio.run(_revision(url))
    upgrade(url)
    after = asyncio.run(_revision(url))
    where = describe(parse_database_url(url))
    if before is None:
        click.echo(f"database created at {where} (schema {after})")
    elif before != after:
        click.echo(f"database at {where} upgraded from {before} to {after}")
    else:
        click.echo(f"database at {where} is already current ({after})")


@db.command("backup")
@click.argument("target", type=click.Path(path_type=Path))
@pass_state
def db_backup(state: CliState, target: Path) -> None:
    """Back up the database and the data folder together into the new folder TARGET (while running)."""
    from mailtickets.maintenance.backup import backup

    report = backup(state.settings.database_url, state.settings.data_dir, target)
    click.echo(f"backup written to {report.folder}: database {report.database.name}, {report.files} files")


@db.command("copy")
@click.option("--to", "target_url", required=True, help="The empty database to copy into (created if SQLite).")
@pass_state
def db_copy(state: CliState, target_url: str) -> None:
    """Copy every row into another database, e.g. from SQLite to PostgreSQL; stop the service first."""
    from mailtickets.maintenance.copy import copy_database, prepare_target

    prepare_target(state.settings.database_url, target_url)
    report = asyncio.run(copy_database(state.settings.database_url, target_url))
    click.echo(f"copied {sum(report.rows.values())} rows in {len(report.rows)} tables")
    click.echo("now set MAILTICKETS_DATABASE_URL to the new database (the data folder stays where it is)")


@db.command("purge")
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Days (default: the raw_mail_retention_days setting).",
)
@click.option("--dry-run", is_flag=True, help="Only say what would go.")
@pass_state
def db_purge(state: CliState, days: float | None, dry_run: bool) -> None:
    """Forget the kept raw copies of mail older than the retention (held mail keeps its bytes)."""
    from mailtickets.clock import SystemClock
    from mailtickets.db import transaction
    from mailtickets.maintenance.purge import PurgeReport, delete_files, purge_raw_mail
    from mailtickets.storage import FileStore

    retention = days or state.settings.raw_mail_retention_days
    if not retention:
        raise CliError("raw_mail_retention_days is 0 (keep forever): set it, or give --older-than DAYS", EX_CONFIG)

    async def work(sessions: async_sessionmaker[AsyncSession]) -> PurgeReport:
        async with transaction(sessions) as session:
            store = FileStore(state.settings.raw_dir)
            return await purge_raw_mail(session, store, SystemClock().now(), retention, dry_run=dry_run)

    report = run_with_store(state.settings, work)
    if not dry_run:
        delete_files(report)  # after the commit
    verb = "would forget" if dry_run else "forgot"
    click.echo(
        f"{verb} the raw copy of {report.records} messages older than {retention:g} days "
        f"({len(report.files)} files, {report.bytes} bytes)"
    )


async def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        return await schema_revision(engine, url)
    finally:
        await engine.dispose()


@click.group()
def tickets() -> None:
    """Tickets."""


@tickets.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--status", default=None, help="Only tickets with this status.")
@pass_state
def tickets_list(state: CliState, as_json: bool, status: str | None) -> None:
    """List tickets, newest first."""
    rows = run_with_store(state.settings, lambda sessions: ticket_rows(sessions, status))
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['ref']:<10} {row['status']:<10} {row['priority']:<6} {row['client'] or '-':<20} {row['subject']}"
        )


@tickets.command("show")
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def tickets_show(state: CliState, reference: str, as_json: bool) -> None:
    """Show one ticket with its contact, client, messages and attachments."""
    detail = run_with_store(state.settings, lambda s: ticket_detail(s, reference, state.settings.ticket_prefix))
    if as_json:
        echo_json(detail)
        return
    click.echo(f"{detail['ref']}  {detail['subject']}")
    click.echo(
        f"status {detail['status']}, priority {detail['priority']}, client {detail['client'] or '-'}, "
        f"contact {detail['contact']['email'] if detail['contact'] else '-'}"
    )
    for message in detail["messages"]:
        click.echo(f"\n--- {message['direction']} {message['created_at']} {message['author_email'] or ''}")
        click.echo(message["body_text_new"] or message["body_text"])
        for attachment in message["attachments"]:
            click.echo(f"[attachment] {attachment['filename']} ({attachment['size']} bytes)")


COMMANDS = [db, tickets]
