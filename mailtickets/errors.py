"""One error hierarchy that says whose fault a failure is and what happens next.

- SenderError: the message or request is at fault; recorded with a reason, never retried.
- TemporaryError: ours and passing (database locked or down, SMTP unreachable); retry later.
- NotFound / Conflict / InvalidInput: for the service layer, mapped to exit codes and HTTP statuses
  in one place each (the CLI and the API).
"""

from __future__ import annotations


class MailticketsError(Exception):
    """Base of every error the product raises on purpose."""


class SenderError(MailticketsError):
    """The input is at fault: record the reason and move on."""


class TemporaryError(MailticketsError):
    """Our side failed in a way that may pass: the caller should retry (an MTA gets EX_TEMPFAIL)."""


class ConfigurationError(MailticketsError):
    """A setting, or a file or server a setting names, is wrong: an operator has to fix it."""


class StoreMisconfigured(TemporaryError, ConfigurationError):
    """The database cannot be used as configured (a wrong URL, no schema yet); the message says what to do.

    Temporary for an MTA (the mail waits until an operator fixes it), a configuration error for the CLI.
    """


class CannotListen(MailticketsError):
    """A server could not bind its address (in use, not ours, not permitted)."""


class NotFound(MailticketsError):
    pass


class Conflict(MailticketsError):
    pass


class InvalidInput(MailticketsError):
    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}
