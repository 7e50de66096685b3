"""Builders shared by the rules tests: facts for one message and specs from terse dicts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mailtickets.db import create_engine, session_factory, upgrade
from mailtickets.parse.message import ParsedAttachment, ParsedMessage
from mailtickets.rules import CompiledRule, MessageFacts, RuleSpec, compile_rules
from mailtickets.rules.model import rule_from_dict


def make_facts(
    *,
    sender: str | None = "alice@acme.example",
    subject: str = "Printer on fire",
    text: str = "Please help.",
    to: tuple[str, ...] = ("support@help.example",),
    cc: tuple[str, ...] = (),
    delivered_to: tuple[str, ...] = (),
    headers: dict[str, tuple[str, ...]] | None = None,
    attachments: tuple[ParsedAttachment, ...] = (),
    mailbox: str = "support",
    client_name: str | None = "Acme",
    contact_email: str | None = "alice@acme.example",
    sender_known: bool = True,
    automatic_reason: str | None = None,
) -> MessageFacts:
    parsed = ParsedMessage(
        message_id="m1@acme.example",
        sender=sender,
        sender_name="Alice",
        subject=subject,
        to=to,
        cc=cc,
        delivered_to=delivered_to,
        headers=headers or {},
        text=text,
        attachments=attachments,
    )
    return MessageFacts(parsed, mailbox, client_name, contact_email, sender_known, automatic_reason)


def rule(name: str, conditions: list[dict[str, Any]], actions: list[dict[str, Any]], **extra: Any) -> RuleSpec:
    return rule_from_dict({"name": name, "conditions": conditions, "actions": actions, **extra})


def compiled(*specs: RuleSpec) -> tuple[CompiledRule, ...]:
    return compile_rules(specs)


def cond(field: str, op: str = "equals", value: Any = True, negate: bool = False) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value, "not": negate}


def tag(value: str) -> dict[str, Any]:
    return {"action": "add_tag", "value": value}


async def open_db(tmp_path: Path) -> tuple[str, AsyncEngine, async_sessionmaker[AsyncSession]]:
    """A migrated SQLite file in tmp_path (the schema comes from Alembic, so migrations are tested too)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'rules.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    return url, engine, session_factory(engine)


async def count_rows(sessions: async_sessionmaker[AsyncSession], *tables: type[Any]) -> dict[str, int]:
    async with sessions() as session:
        return {t.__tablename__: await session.scalar(select(func.count()).select_from(t)) or 0 for t in tables}
