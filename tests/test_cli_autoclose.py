from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import update

from mailtickets.cli import main
from mailtickets.db import create_engine, session_factory, transaction
from mailtickets.models import Ticket, TicketStatus
from tests.notify_support import seed_ticket


def test_jobs_autoclose_runs_one_pass(tmp_path: Path, sqlite_template: Path) -> None:
    database = tmp_path / "mt.db"
    shutil.copy(sqlite_template, database)
    url = f"sqlite+aiosqlite:///{database}"

    async def seed() -> int:
        engine = create_engine(url)
        sessions = session_factory(engine)
        seeded = await seed_ticket(sessions)
        quiet_since = datetime.now(UTC) - timedelta(hours=49)
        async with transaction(sessions) as session:
            await session.execute(
                update(Ticket)
                .where(Ticket.id == seeded.ticket_id)
                .values(status=TicketStatus.AUTO_CLOSE, autoclose_since=quiet_since)
            )
        await engine.dispose()
        return seeded.ticket_id

    ticket_id = asyncio.run(seed())
    env = {"MAILTICKETS_DATABASE_URL": url, "MAILTICKETS_DATA_DIR": str(tmp_path / "data")}
    first = CliRunner().invoke(main, ["jobs", "autoclose", "--json"], env=env)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == {"chasers": [ticket_id], "closed": []}
    again = CliRunner().invoke(main, ["jobs", "autoclose"], env=env)
    assert "0 chasers queued, 0 tickets closed" in again.output
