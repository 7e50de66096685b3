"""`mailtickets demo`: the whole product in one command, on embedded servers, in a temporary folder."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import click
from sqlalchemy import func, select

from mailtickets.api.keys import create_api_key
from mailtickets.db import transaction
from mailtickets.demo.run import DemoReport, Embedded, embedded, run_demo
from mailtickets.models import InboundMail

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ARRIVAL_POLL_SECONDS = 0.5


@click.command("demo")
@click.option("--keep", is_flag=True, help="Keep running afterwards, with the HTTP API up, until Ctrl-C.")
@click.option("--verbose", is_flag=True, help="Show the service's log lines.")
def demo(keep: bool, verbose: bool) -> None:
    """Run a self-contained demo: IMAP in, tickets, notifications out. Needs nothing but this package."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format=LOG_FORMAT)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command lines
    try:
        asyncio.run(_demo(keep))
    except TimeoutError as exc:
        raise click.ClickException("the demo timed out waiting for the service (try --verbose)") from exc


async def _demo(keep: bool) -> None:
    async with embedded() as world:
        report = await run_demo(world, click.echo)
        print_report(report)
        if keep:
            await _keep_until_stopped(world)
        else:
            click.echo(NEXT_STEPS)


def print_report(report: DemoReport) -> None:
    click.echo("\nMail delivered to the support mailbox (IMAP):")
    click.echo(table(
        ("what", "from", "outcome", "ticket", "reason"),
        [(d.label, d.sender, d.outcome, d.ticket or "-", d.reason or "") for d in report.delivered],
    ))  # fmt: skip
    click.echo("\nTickets:")
    click.echo(table(
        ("ticket", "status", "client", "assigned", "subject"),
        [(str(t["ref"]), str(t["status"]), str(t["client"] or "-"), str(t["assigned_agent"] or "-"),
          str(t["subject"])) for t in reversed(report.tickets)],
    ))  # fmt: skip
    click.echo("\nNotifications sent (as received by the SMTP sink):")
    click.echo(table(("to", "kind", "subject"), [(n.recipient, n.kind, n.subject) for n in report.notifications]))


NEXT_STEPS = """
Next steps:
  mailtickets demo --keep        the same, then it keeps running: the HTTP API and its docs, an API key,
                                 and an IMAP mailbox to drop your own mail into, each arrival printed
  running it for real            README.md, "Running it": mailtickets db upgrade, clients add, check, run"""


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain fixed-width table; long cells are cut so that a line fits a terminal, but never the last
    column (a quarantine reason or a subject is read in full)."""
    cells = [[*(_cut(c) for c in row[:-1]), " ".join(row[-1].split())] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cut(value: str, limit: int = 48) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


async def _keep_until_stopped(world: Embedded) -> None:
    """The service (API included) keeps running inside `embedded` until Ctrl-C sets `world.stop`."""
    async with transaction(world.sessions) as session:
        _key, token = await create_api_key(session, "demo")
    click.echo(f"\nThe HTTP API is up: http://{world.settings.http_bind}/api/v1/docs")
    click.echo(f"API key (Bearer): {token}")
    click.echo("  (the docs page asks for it: user name 'demo', the key as password)")
    click.echo(f"  curl -H 'Authorization: Bearer {token}' http://{world.settings.http_bind}/api/v1/tickets")
    click.echo(
        f"IMAP (plain, 127.0.0.1:{world.imap.port}) user {world.imap.user!r} password {world.imap.password!r}: "
        "APPEND mail to INBOX and watch it become tickets."
    )
    click.echo("Press Ctrl-C to stop. Each mail that arrives is printed here:")
    watcher = asyncio.create_task(watch_arrivals(world, click.echo))
    try:
        await world.stop.wait()
    finally:
        watcher.cancel()


async def watch_arrivals(world: Embedded, echo: Callable[[str], None]) -> None:
    """One line per message the service records from now on: sender, subject, outcome, ticket, reason."""
    async with world.sessions() as session:
        seen = int(await session.scalar(select(func.max(InboundMail.id))) or 0)
    while True:
        async with world.sessions() as session:
            rows = list(
                await session.scalars(select(InboundMail).where(InboundMail.id > seen).order_by(InboundMail.id))
            )
        for row in rows:
            seen = row.id
            reason = f" ({row.reason})" if row.reason else ""
            echo(f'arrived: {row.sender or "-"} "{row.subject or ""}" → {row.outcome.value}{reason}')
        await asyncio.sleep(ARRIVAL_POLL_SECONDS)


COMMANDS = [demo]
