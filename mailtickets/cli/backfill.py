"""`mailtickets backfill`: import a mailbox's history, with a progress bar, mailing nobody."""

from __future__ import annotations

import asyncio
import signal
import sys
from contextlib import ExitStack
from datetime import datetime
from typing import Any

import click
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.cli.common import CliState, echo_json, pass_state, run_with_store
from mailtickets.cli.errors import EX_CONFIG, EX_NOPERM, EX_UNAVAILABLE, CliError
from mailtickets.errors import InvalidInput, StoreMisconfigured, TemporaryError
from mailtickets.ingest.backfill import Summary, find_mailbox
from mailtickets.ingest.backfill import backfill as run_backfill
from mailtickets.ingest.imap_session import ImapAuthError, ImapError
from mailtickets.ingest.result import IngestResult
from mailtickets.pipeline.ingest import Pipeline

EX_TEMPFAIL = 75  # the store is unavailable: run again later, it resumes
EXIT_SIGTERM = 128 + signal.SIGTERM


class BarProgress:
    """click.progressbar, sized once the server has said how many messages there are."""

    def __init__(self, stack: ExitStack, label: str) -> None:
        self._stack, self._label = stack, label
        self._bar: Any = None

    def start(self, total: int) -> None:
        bar = click.progressbar(length=total, label=self._label, file=sys.stderr, show_pos=True)
        self._bar = self._stack.enter_context(bar)

    def advance(self, uid: int, result: IngestResult) -> None:
        self._bar.update(1)


@click.command()
@click.option("--mailbox", "name", required=True, help="Name of a configured mailbox.")
@click.option("--since", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="YYYY-MM-DD.")
@click.option("--folder", default=None, help="Folder to read instead of the mailbox's own (e.g. Sent).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Import at most N messages this run.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@pass_state
def backfill(state: CliState, name: str, since: datetime, folder: str | None, limit: int | None, as_json: bool) -> None:
    """Import a mailbox's messages since a date as tickets, without notifying anyone; resumable."""
    settings = state.settings
    try:
        mailbox = find_mailbox(settings, name)
    except InvalidInput as exc:
        raise CliError(str(exc), EX_CONFIG) from exc

    async def work(sessions: async_sessionmaker[AsyncSession]) -> Summary:
        _stop_like_ctrl_c_on_sigterm()
        async with Pipeline(settings, sessions, notify=False) as pipeline:
            with ExitStack() as stack:
                progress = None if as_json else BarProgress(stack, f"{name}/{folder or mailbox.folder}")
                return await run_backfill(
                    mailbox, since.date(), pipeline, sessions, folder=folder, limit=limit, progress=progress
                )

    try:
        summary = run_with_store(settings, work)
    except ImapAuthError as exc:
        raise CliError(f"mailbox {name}: login refused: {exc}", EX_NOPERM) from exc
    except ImapError as exc:
        raise CliError(f"mailbox {name}: {exc}", EX_UNAVAILABLE) from exc
    except StoreMisconfigured:
        raise  # not temporary for a person at a terminal: the one-line error says what to do
    except (TemporaryError, DBAPIError) as exc:
        click.echo(f"temporary failure, run again later to continue: {exc}", err=True)
        sys.exit(EX_TEMPFAIL)
    except asyncio.CancelledError:
        click.echo("stopped by SIGTERM; the progress is saved, run the same command again to continue", err=True)
        sys.exit(EXIT_SIGTERM)
    _print(summary, as_json)


def _stop_like_ctrl_c_on_sigterm() -> None:
    """SIGTERM cancels the import as Ctrl-C does, so that what was committed is saved as progress."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def _print(summary: Summary, as_json: bool) -> None:
    if as_json:
        echo_json(summary.as_json())
        return
    counts = ", ".join(f"{outcome} {n}" for outcome, n in sorted(summary.outcomes.items())) or "nothing new"
    click.echo(f"{summary.mailbox}/{summary.folder} since {summary.since}: {summary.found} found, "
               f"{summary.skipped} already imported; {counts}")  # fmt: skip
