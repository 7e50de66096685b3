"""Email templates: Jinja2, one subject, text and HTML template per kind of notification.

Templates live in ``templates/emails/`` (shipped inside the package as ``mailtickets/templates``);
an admin's folder (``settings.templates_dir``) is searched first, file by file.  HTML is autoescaped;
StrictUndefined turns a misspelt variable into an error, and ``mailtickets templates check`` renders
every template with a sample context so that the error shows up at deploy time, not in a customer's mail.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

_PACKAGE = Path(__file__).resolve().parent.parent
# Installed: inside the package (mailtickets/templates links to the repository's templates/).  In a source
# checkout whose copy lost that link (some archivers turn it into a plain file), the repository's folder.
BUILTIN_DIR = next(
    (d for d in (_PACKAGE / "templates" / "emails", _PACKAGE.parent / "templates" / "emails") if d.is_dir()),
    _PACKAGE / "templates" / "emails",
)

# Every kind of mail we send; each needs <kind>.subject.txt, <kind>.txt and <kind>.html.
KINDS = (
    "acknowledgement",
    "new_ticket",
    "assigned",
    "client_reply",
    "agent_reply",
    "agent_note",
    "agent_refused",
    "chaser",
    "closed",
    "merged",
)


@dataclass(frozen=True, slots=True)
class TicketView:
    reference: str
    subject: str
    status: str
    priority: str


@dataclass(frozen=True, slots=True)
class MailContext:
    """Everything a template may use; the same names for every kind, so a template can use any."""

    ticket: TicketView
    support_address: str
    recipient_name: str = ""
    contact_name: str = ""
    contact_email: str = ""
    client_name: str = ""
    agent_name: str = ""
    message_text: str = ""  # the message the mail is about: the client's request or the agent's reply
    author_name: str = ""  # who wrote that message (not always the ticket's contact)
    author_email: str = ""
    reopened: bool = False
    automatic: bool = False
    close_in_hours: int = 0
    merged_into: str = ""  # the reference of the ticket this one was merged into
    subject_line: str = ""  # filled in after the subject is rendered, for the HTML <title>


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


class TemplateError(ValueError):
    """A template is missing, malformed or uses an undefined variable."""


# How often an edited template file is looked for: Jinja would stat its file at every use (three per
# notification, ~2% of ingest), and an edit need not show within the second.
RECHECK_SECONDS = 1.0


class _FilesRecheckedEverySecond(jinja2.FileSystemLoader):
    """Jinja's FileSystemLoader, whose "is the file unchanged?" answer is kept for RECHECK_SECONDS."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        source, filename, unchanged = super().get_source(environment, template)
        checked_at, answer = time.monotonic(), True

        def unchanged_lately() -> bool:
            nonlocal checked_at, answer
            now = time.monotonic()
            if now - checked_at >= RECHECK_SECONDS:
                checked_at, answer = now, unchanged()
            return answer

        return source, filename, unchanged_lately


def make_environment(override_dir: Path | None = None) -> jinja2.Environment:
    search = [str(override_dir)] if override_dir is not None else []
    search.append(str(BUILTIN_DIR))
    return jinja2.Environment(
        loader=_FilesRecheckedEverySecond(search),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )


@lru_cache(maxsize=8)
def cached_environment(override_dir: Path | None) -> jinja2.Environment:
    """Templates compiled once per process; Jinja re-reads a template when its file changes (seen
    within RECHECK_SECONDS)."""
    return make_environment(override_dir)


def _one_line(text: str) -> str:
    # A subject template may wrap; a header must not.
    return " ".join(text.split())


def render(env: jinja2.Environment, kind: str, context: MailContext) -> Rendered:
    """Render the three templates of `kind`; raises TemplateError instead of sending a broken mail."""
    try:
        values: dict[str, Any] = asdict(context)
        subject = _one_line(env.get_template(f"{kind}.subject.txt").render(values))
        values["subject_line"] = subject
        text = env.get_template(f"{kind}.txt").render(values)
        html = env.get_template(f"{kind}.html").render(values)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"template {kind}: {exc}") from exc
    return Rendered(subject=subject, text=text + "\n", html=html + "\n")


def sample_context() -> MailContext:
    return MailContext(
        ticket=TicketView("TCK-12", "Printer on fire <urgent> & smoking", "open", "high"),
        support_address="support@helpdesk.example",
        recipient_name="Zoë Müller",
        contact_name="Zoë Müller",
        contact_email="zoe@client.example",
        client_name="Client & Co",
        agent_name="Ana Agent",
        message_text="Hello,\nthe printer is on fire.\n\n> quoted <b>text</b>",
        author_name="Zoë Müller",
        author_email="zoe@client.example",
        reopened=True,
        automatic=True,
        close_in_hours=24,
        merged_into="TCK-7",
    )


def check_templates(override_dir: Path | None = None) -> dict[str, str | None]:
    """Render every kind with the sample context: {kind: None when fine, else the error}."""
    env = make_environment(override_dir)
    results: dict[str, str | None] = {}
    for kind in KINDS:
        for variant in (sample_context(), replace(sample_context(), reopened=False, automatic=False)):
            try:
                render(env, kind, variant)
            except TemplateError as exc:
                results[kind] = str(exc)
                break
        else:
            results[kind] = None
    return results
