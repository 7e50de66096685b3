from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailtickets.cli import main
from mailtickets.db import create_engine, session_factory
from mailtickets.models import OutboxMail, Ticket, TicketStatus
from tests.notify_support import seed_ticket


@pytest.fixture
def env(tmp_path: Path, sqlite_template: Path) -> dict[str, str]:
    database = tmp_path / "mt.db"
    shutil.copy(sqlite_template, database)
    url = f"sqlite+aiosqlite:///{database}"

    async def seed() -> None:
        engine = create_engine(url)
        await seed_ticket(session_factory(engine))
        await seed_ticket(session_factory(engine), number=13, subject="Printer still on fire")
        await engine.dispose()

    asyncio.run(seed())
    return {
        "MAILTICKETS_DATABASE_URL": url,
        "MAILTICKETS_SUPPORT_ADDRESS": "support@helpdesk.example",
        "MAILTICKETS_DATA_DIR": str(tmp_path / "data"),
    }


def _state(env: dict[str, str]) -> tuple[list[tuple[str, str, int | None]], list[str]]:
    async def read() -> tuple[list[tuple[str, str, int | None]], list[str]]:
        engine = create_engine(env["MAILTICKETS_DATABASE_URL"])
        async with session_factory(engine)() as session:
            tickets = (await session.scalars(select(Ticket).order_by(Ticket.number))).all()
            kinds = (await session.scalars(select(OutboxMail.kind).order_by(OutboxMail.id))).all()
            result = [(t.reference, t.status.value, t.assigned_agent_id) for t in tickets], list(kinds)
        await engine.dispose()
        return result

    return asyncio.run(read())


def _run(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(main, ["tickets", *args], env=env, input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def test_lifecycle_commands(env: dict[str, str], tmp_path: Path) -> None:
    assert "TCK-12 assigned to ana@corp.example" in _run(env, "assign", "TCK-12", "ana@corp.example")
    assert "TCK-12 is hold" in _run(env, "status", "TCK-12", "hold")
    body = tmp_path / "reply.txt"
    body.write_text("Please try turning it off.\n", "utf-8")
    assert "reply queued for TCK-12" in _run(env, "reply", "TCK-12", "--body-file", str(body))
    assert "note added" in _run(env, "reply", "TCK-12", "--body-file", "-", "--private", stdin="internal")
    assert "TCK-12 priority high" in _run(env, "priority", "TCK-12", "high")
    assert "TCK-13 merged into TCK-12" in _run(env, "merge", "TCK-13", "TCK-12")
    assert "TCK-12 closed" in _run(env, "close", "TCK-12")
    tickets, kinds = _state(env)
    assert [(ref, status) for ref, status, _ in tickets] == [("TCK-12", "closed"), ("TCK-13", "closed")]
    assert tickets[0][2] is not None
    assert kinds == ["assigned", "agent_reply", "merged", "closed"]


def test_errors_are_clean_messages(env: dict[str, str]) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["tickets", "close", "TCK-99"], env=env)
    assert missing.exit_code == 66 and "no ticket TCK-99" in missing.output
    bad = runner.invoke(main, ["tickets", "status", "TCK-12", "resolved"], env=env)
    assert bad.exit_code == 65 and "unknown status" in bad.output
    assert TicketStatus.OPEN.value in bad.output
