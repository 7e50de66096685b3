"""Core commands: database, tickets list/show (the pipe, `mailtickets ingest`, is in cli/pipe.py)."""

from __future__ import annotations

import click

from mailtickets.cli.common import CliState, echo_json, pass_state, run_with_store
from mailtickets.db import upgrade
from mailtickets.tickets.views import ticket_detail, ticket_rows


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_state
def db_upgrade(state: CliState) -> None:
    """Apply schema migrations up to the newest."""
    upgrade(state.settings.database_url)
    click.echo("database is up to date")


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
