"""The dry run tells the truth: for every fixture it reports the outcome ingest then gives, and it leaves
no trace (no row changed, no file written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailtickets.models import Base, Client, ClientDomain, Rule
from mailtickets.pipeline.dryrun import dry_run
from tests.builders import make_message
from tests.conftest import Store
from tests.world import build_world

FIXTURES = Path(__file__).parent / "fixtures" / "eml"


async def _snapshot(store: Store) -> tuple[dict[str, list[tuple[Any, ...]]], list[str]]:
    """Every row of every table, and every file under the data folder."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with store.sessions() as session:
        for table in Base.metadata.sorted_tables:
            result = await session.execute(select(table))
            rows[table.name] = sorted((tuple(row) for row in result), key=repr)
    files = sorted(str(p) for p in store.settings.data_dir.rglob("*")) if store.settings.data_dir.exists() else []
    return rows, files


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.eml")))
async def test_dry_run_reports_what_ingest_then_does_and_writes_nothing(sqlite_store: Store, name: str) -> None:
    await build_world(sqlite_store.sessions, sqlite_store.clock)
    raw = (FIXTURES / name).read_bytes()
    pipeline = sqlite_store.pipeline()
    before = await _snapshot(sqlite_store)
    report = await dry_run(pipeline, raw, "fixture")
    assert await _snapshot(sqlite_store) == before, "the dry run wrote something"
    result = await pipeline.ingest(raw, "fixture")
    assert (report["result"]["outcome"], report["result"]["ticket"], report["result"]["reason"]) == (
        result.outcome.value,
        result.ticket,
        result.reason,
    )


async def test_dry_run_of_mail_already_ingested_says_duplicate(sqlite_store: Store) -> None:
    await build_world(sqlite_store.sessions, sqlite_store.clock)
    raw = (FIXTURES / "gmail-new-multipart-alternative.eml").read_bytes()
    pipeline = sqlite_store.pipeline()
    first = await pipeline.ingest(raw, "fixture")
    report = await dry_run(pipeline, raw, "fixture")
    assert report["result"]["outcome"] == "duplicate"
    assert report["result"]["ticket"] == first.ticket


async def test_a_kept_trace_entry_is_dry_run_as_if_it_arrived_now_and_nothing_is_written(store: Store) -> None:
    await build_world(store.sessions, store.clock)
    raw = make_message(sender="eve@elsewhere.example", message_id="<held-1@elsewhere.example>")
    pipeline = store.pipeline()
    held = await pipeline.ingest(raw, "support")
    assert held.outcome.value == "quarantined"
    async with store.sessions() as session, session.begin():
        session.add(Client(name="Elsewhere", domains=[ClientDomain(domain="elsewhere.example")]))
    before = await _snapshot(store)
    assert (await dry_run(pipeline, raw, "support"))["result"]["outcome"] == "duplicate"  # by bytes alone
    report = await dry_run(pipeline, raw, "support", anew=1)
    assert (report["result"]["outcome"], report["result"]["ticket"]) == ("created", "TCK-4")
    assert report["message"]["sender_known"] is True
    assert await _snapshot(store) == before, "the dry run wrote something (its dedupe key set aside for good?)"


async def test_dry_run_reports_a_rule_quarantine_and_an_unknown_sender(store: Store) -> None:
    async with store.sessions() as session, session.begin():
        session.add(Client(name="Acme", domains=[ClientDomain(domain="acme.example")]))
        conditions = [{"field": "subject", "op": "contains", "value": "lottery"}]
        session.add(Rule(name="scam", conditions=conditions, actions=[{"action": "quarantine", "value": "scam"}]))
    pipeline = store.pipeline()
    held = await dry_run(pipeline, make_message(sender="bob@acme.example", subject="You won the lottery"), "api")
    assert held["result"]["outcome"] == "quarantined" and held["result"]["reason"] == "rule scam: scam"
    assert held["rules"][0]["state"] == "matched"
    stranger = await dry_run(pipeline, make_message(sender="eve@elsewhere.example", subject="Hello"), "api")
    assert stranger["result"]["outcome"] == "quarantined" and stranger["result"]["ticket"] is None
    assert "unknown sender" in stranger["result"]["reason"]
    known = await dry_run(pipeline, make_message(sender="bob@acme.example", subject="Printer"), "api")
    assert (known["result"]["outcome"], known["result"]["ticket"]) == ("created", "TCK-1")
    again = await dry_run(pipeline, make_message(sender="bob@acme.example", subject="Printer"), "api")
    assert again["result"]["ticket"] == "TCK-1", "the rolled-back dry run must not consume a ticket number"


async def test_dry_run_of_unparseable_bytes_is_quarantined_like_ingest(sqlite_store: Store) -> None:
    sqlite_store.settings.max_message_bytes = 100
    report = await dry_run(sqlite_store.pipeline(), make_message(body="x" * 500), "api")
    assert report["result"]["outcome"] == "quarantined" and "too large" in report["result"]["reason"]
    assert report["message"]["from"] is None
