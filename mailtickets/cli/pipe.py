"""`mailtickets ingest`: the pipe an MTA runs once per message (an alias or a Postfix pipe(8) transport).

Its exit status is all the MTA reads: 0 delivered (the outcome is recorded), 75 (EX_TEMPFAIL) keep the mail
and try again later. Anything that is not the message's fault — a missing or unreadable config file, a
bad setting, a wrong database URL, no schema, the store down or locked, a full disk, an unwritable data
folder, even a bug of ours — exits 75 with the cause on one stderr line, so the MTA never bounces mail
for our mistake. (Postfix bounces on any other non-zero status: "Command died with status 1".)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NoReturn

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InvalidRequestError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.cli.common import CliState, echo_json, pass_state, run_with_store
from mailtickets.errors import TemporaryError
from mailtickets.ingest.result import IngestResult
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.settings import Settings

log = logging.getLogger(__name__)

EX_NOINPUT = 66  # a FILE named on the command line cannot be read (a person's mistake, not the MTA's)
EX_TEMPFAIL = 75  # sendmail/Postfix convention: keep the message and try again later
_NO_SCHEMA = ("no such table", "does not exist", "UndefinedTable")


def tempfail(cause: str) -> NoReturn:
    """One line on stderr, exit 75: the MTA keeps the message and retries."""
    lines = [line.strip() for line in cause.splitlines() if line.strip() and "errors.pydantic.dev" not in line]
    click.echo(f"mailtickets ingest: temporary failure, try again later: {'; '.join(lines)}", err=True)
    sys.exit(EX_TEMPFAIL)


class _PipeCommand(click.Command):
    """A wrong option in the MTA's command line is a configuration error too: exit 75, not click's 2."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            tempfail(f"bad command line: {exc.format_message()}")


@click.command(cls=_PipeCommand)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")
@click.option("--source", default="pipe", show_default=True, help="Name recorded as the message's source.")
@click.argument("files", nargs=-1, type=click.Path(allow_dash=True, path_type=Path))
@pass_state
def ingest(state: CliState, as_json: bool, source: str, files: tuple[Path, ...]) -> None:
    """Ingest messages from FILEs, or one message from standard input (no FILE or `-`).

    Exit 0 when every message has its outcome recorded, 75 (EX_TEMPFAIL: an MTA keeps the mail and retries)
    on any configuration, store or environment error, 66 when a FILE cannot be read.
    """
    inputs = list(files) or [Path("-")]
    for item in inputs:
        if str(item) != "-" and not item.is_file():
            click.echo(f"mailtickets ingest: cannot read {item}: not a file", err=True)
            sys.exit(EX_NOINPUT)

    async def work(sessions: async_sessionmaker[AsyncSession]) -> None:
        pipeline = Pipeline(state.settings, sessions)
        for item in inputs:
            raw = sys.stdin.buffer.read() if str(item) == "-" else item.read_bytes()
            _print_result(item, await pipeline.ingest(raw, source), as_json)

    _run_or_tempfail(state.settings, work)


def _run_or_tempfail(settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[None]]) -> None:
    """The pipe's one boundary: every failure that is not the message's fault becomes exit 75."""
    where = _database(settings.database_url)
    try:
        run_with_store(settings, work)
    except (ArgumentError, InvalidRequestError, ImportError) as exc:  # the URL names no usable async driver
        tempfail(f"database_url {where} is not usable: {_first_line(exc)}")
    except (TemporaryError, SQLAlchemyError, OSError) as exc:
        cause = _first_line(_root(exc))
        if any(marker in cause or marker in type(_root(exc)).__name__ for marker in _NO_SCHEMA):
            tempfail(f"the database at {where} has no schema: run mailtickets db upgrade ({cause})")
        tempfail(f"{_first_line(exc)} ({cause})" if cause != _first_line(exc) else cause)
    except click.ClickException:
        raise
    except Exception as exc:  # the pipe's boundary: a bug of ours must not bounce the mail
        log.exception("mailtickets ingest failed")
        tempfail(f"unexpected {type(exc).__name__}: {_first_line(exc)}")


def _print_result(item: Path, result: IngestResult, as_json: bool) -> None:
    if as_json:
        echo_json({"file": str(item), **result.as_json()})
    else:
        reason = f" ({result.reason})" if result.reason else ""
        click.echo(f"{item}: {result.outcome.value} {result.ticket or '-'}{reason}")


def _database(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url.split("@")[-1])  # unparseable: at least never print a password


def _root(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return getattr(exc, "orig", None) or exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


COMMANDS = [ingest]
