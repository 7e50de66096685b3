"""`#command` lines at the very top of an agent's mail: parsed all at once, refused with the line's number.

Pure: the text in, the commands and the remaining text out, or a `CommandError` naming the line and why.
A mail's commands are applied together or not at all (see `handle`), so parsing checks every argument it
can without the database; the rest (an unknown agent, a missing ticket) is checked when applying.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STATUSES = ("open", "working", "hold", "auto-close", "closed")
PRIORITIES = ("high", "medium", "low")
MAX_CATEGORY_CHARS = 100
MAX_COMMAND_LINES = 20  # more is not a list of commands but a mistake

_COMMAND_LINE = re.compile(r"^#(?P<name>[A-Za-z][\w-]*)(?:\s+(?P<argument>.*?))?\s*$")
_TICKET_REF = re.compile(r"^[A-Za-z][\w-]{0,30}?\d{1,9}$|^\d{1,9}$")
# name → what its argument must be: None takes none, a tuple one of those values, "text" any text.
_SPEC: dict[str, tuple[str, ...] | str | None] = {
    "close": None,
    "reopen": None,
    "hold": None,
    "unassign": None,
    "note": None,
    "status": STATUSES,
    "priority": PRIORITIES,
    "assign": "text",
    "merge": "ticket",
    "category": "text",
}


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    argument: str
    line: int  # 1-based, in the mail's text

    def __str__(self) -> str:
        return f"#{self.name} {self.argument}".strip()


@dataclass(frozen=True, slots=True)
class Commands:
    commands: tuple[Command, ...]
    text: str  # the mail's text without the command lines

    @property
    def is_note(self) -> bool:
        return any(c.name == "note" for c in self.commands)

    @property
    def actions(self) -> tuple[Command, ...]:
        """The commands that change the ticket (#note only makes the mail private)."""
        return tuple(c for c in self.commands if c.name != "note")


class CommandError(ValueError):
    """A command line the agent must fix: the whole mail is refused."""

    def __init__(self, line: int, text: str, why: str) -> None:
        super().__init__(f"line {line} ({text.strip()[:80]}): {why}")
        self.line = line


def parse_commands(text: str) -> Commands:
    lines = text.splitlines()
    found: list[Command] = []
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        match = _COMMAND_LINE.match(stripped)
        if stripped and match is None:
            break
        if match is not None:
            if len(found) == MAX_COMMAND_LINES:
                raise CommandError(index + 1, stripped, f"at most {MAX_COMMAND_LINES} command lines")
            found.append(_command(match, index + 1))
        index += 1
    if not found:
        return Commands((), text)
    return Commands(tuple(found), "\n".join(lines[index:]).strip("\n"))


def _command(match: re.Match[str], number: int) -> Command:
    line_text = match.group(0)
    name = match.group("name").lower()
    argument = (match.group("argument") or "").strip()
    if name not in _SPEC:
        known = ", ".join(f"#{n}" for n in _SPEC)
        raise CommandError(number, line_text, f"unknown command #{name} (known: {known})")
    _check_argument(name, argument, number, line_text)
    return Command(name, argument.lower() if isinstance(_SPEC[name], tuple) else argument, number)


def _check_argument(name: str, argument: str, number: int, line_text: str) -> None:
    spec = _SPEC[name]
    if spec is None:
        if argument:
            raise CommandError(number, line_text, f"#{name} takes no argument")
        return
    if not argument:
        raise CommandError(number, line_text, f"#{name} needs an argument")
    if isinstance(spec, tuple) and argument.lower() not in spec:
        raise CommandError(number, line_text, f"#{name} takes one of {', '.join(spec)}")
    if spec == "ticket" and not _TICKET_REF.match(argument):
        raise CommandError(number, line_text, "#merge takes a ticket reference such as TCK-12")
    if name == "category" and len(argument) > MAX_CATEGORY_CHARS:
        raise CommandError(number, line_text, f"a category has at most {MAX_CATEGORY_CHARS} characters")
