"""What `mailtickets run` starts, without starting it."""

from __future__ import annotations

import asyncio

from mailtickets.ingest.leases import Leases
from mailtickets.jobs.autoclose import AutocloseReport, run_autoclose_loop
from mailtickets.metrics import Metrics
from mailtickets.service.app import Runtime, build_components
from tests.conftest import Store


def runtime(store: Store) -> Runtime:
    pipeline = store.pipeline()
    pipeline.metrics = Metrics()
    leases = Leases(store.sessions, store.clock, "test", store.settings.lease_seconds)
    return Runtime(store.settings, store.sessions, store.clock, pipeline, leases)


async def test_run_starts_the_outbox_sender_and_the_autoclose_job(sqlite_store: Store) -> None:
    parts = build_components(runtime(sqlite_store))
    assert {"outbox", "autoclose"} <= set(parts)
    assert not any(name.startswith("imap:") for name in parts)  # no mailbox configured
    assert "lmtp" not in parts  # LMTP is off unless MAILTICKETS_LMTP_BIND is set
    assert "api" in parts  # on MAILTICKETS_HTTP_BIND, 127.0.0.1:8000 unless set


async def test_an_empty_http_bind_runs_no_api(sqlite_store: Store) -> None:
    sqlite_store.settings.http_bind = ""
    assert "api" not in build_components(runtime(sqlite_store))


async def test_the_autoclose_loop_reports_every_pass(sqlite_store: Store) -> None:
    stop = asyncio.Event()
    seen: list[AutocloseReport] = []

    def on_report(report: AutocloseReport) -> None:
        seen.append(report)
        stop.set()

    await asyncio.wait_for(
        run_autoclose_loop(sqlite_store.settings, sqlite_store.sessions, sqlite_store.clock, stop, on_report=on_report),
        timeout=10,
    )
    assert seen == [AutocloseReport(chasers=(), closed=())]
