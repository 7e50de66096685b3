"""Every failure of a CLI command as one line on stderr and an exit code from sysexits(3).

The mapping lives here, once; commands raise the product's errors (errors.py) and this turns them into
what a shell user or a script needs. `mailtickets ingest` keeps its own contract for the MTA (EX_TEMPFAIL).
"""

from __future__ import annotations

import errno

import click
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from mailtickets.errors import (
    CannotListen,
    ConfigurationError,
    Conflict,
    InvalidInput,
    MailticketsError,
    NotFound,
    TemporaryError,
)
from mailtickets.store_status import first_line

EX_USAGE = 64  # the command was used wrongly
EX_DATAERR = 65  # the input data was wrong
EX_NOINPUT = 66  # an input (a file, a record) does not exist
EX_UNAVAILABLE = 69  # a service we need is not available
EX_SOFTWARE = 70  # our own bug
EX_OSERR = 71
EX_IOERR = 74
EX_TEMPFAIL = 75  # try again later
EX_NOPERM = 77
EX_CONFIG = 78  # the configuration is wrong

HANDLED = (MailticketsError, OSError, SQLAlchemyError, ValidationError)


class CliError(click.ClickException):
    """A one-line error with its sysexits code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        set_exit_code(self, exit_code)


def set_exit_code(exc: click.ClickException, code: int) -> None:
    # click declares exit_code a class variable; its runner reads it from the instance.
    setattr(exc, "exit_code", code)  # noqa: B010


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, ConfigurationError | ValidationError | ValueError):
        return EX_CONFIG
    if isinstance(exc, NotFound | FileNotFoundError):
        return EX_NOINPUT
    if isinstance(exc, InvalidInput | Conflict):
        return EX_DATAERR
    if isinstance(exc, CannotListen):
        return EX_UNAVAILABLE
    if isinstance(exc, TemporaryError | SQLAlchemyError):
        return EX_TEMPFAIL
    if isinstance(exc, PermissionError):
        return EX_NOPERM
    if isinstance(exc, OSError):
        return EX_IOERR if exc.errno in (errno.EIO, errno.ENOSPC) else EX_OSERR
    return EX_SOFTWARE


def message_for(exc: BaseException) -> str:
    if isinstance(exc, InvalidInput) and exc.fields:
        return f"{exc} ({'; '.join(f'{k}: {v}' for k, v in exc.fields.items())})"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or first_line(exc)}"
    return first_line(exc)


def as_cli_error(exc: BaseException) -> CliError:
    return CliError(message_for(exc), exit_code_for(exc))
