"""The composition root of `mailtickets run`: build every part once, run them together, stop them cleanly.

Each component is a coroutine function taking the shared `stop` event: it runs until `stop` is set,
then finishes the work in hand and returns.  SIGTERM/SIGINT set `stop`; components that have not
returned after SHUTDOWN_GRACE_SECONDS (or on a second signal) are cancelled.  A component that crashes
stops the whole service (with a non-zero exit), so that the supervisor restarts it visibly.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mailtickets.api.server import run_api
from mailtickets.clock import Clock, SystemClock
from mailtickets.db import alembic_config, create_engine, session_factory
from mailtickets.errors import CannotListen, ConfigurationError, StoreMisconfigured
from mailtickets.ingest.imap import MailboxListener
from mailtickets.ingest.leases import Leases, instance_owner
from mailtickets.ingest.lmtp import serve_lmtp
from mailtickets.ingest.mailbox_config import configured_mailboxes
from mailtickets.jobs.autoclose import run_autoclose_loop
from mailtickets.metrics import Metrics, watch_mailbox
from mailtickets.notify.sender import run_outbox_sender
from mailtickets.notify.templates import check_templates
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.service.posture import security_warnings
from mailtickets.settings import MailboxSettings, Settings
from mailtickets.store_status import check_store

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 20.0

Component = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class SchemaNotCurrent(StoreMisconfigured):
    """The database is not at the newest migration: `mailtickets db upgrade` first."""


class TemplatesBroken(ConfigurationError):
    """An email template (an admin's override) does not render: refuse to start rather than fail mail later."""


@dataclass(frozen=True)
class Runtime:
    """What the components share, built once at start-up."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    pipeline: Pipeline
    leases: Leases


def build_components(rt: Runtime) -> dict[str, Component]:
    """Every part `run` starts.  A new part is one line here."""
    s = rt.settings
    parts: dict[str, Component] = {}
    for mailbox in configured_mailboxes(s):
        parts[f"imap:{mailbox.name}"] = partial(_listen, rt, mailbox)
    if s.lmtp_bind:
        lmtp_slots = s.lmtp_max_concurrent_deliveries
        parts["lmtp"] = partial(serve_lmtp, s.lmtp_bind, rt.pipeline, s.max_message_bytes, max_concurrent=lmtp_slots)
    parts["outbox"] = partial(run_outbox_sender, s, rt.sessions, rt.clock)
    metrics = rt.pipeline.metrics
    on_report = (lambda r: metrics.observe_autoclose(len(r.chasers), len(r.closed))) if metrics else None
    parts["autoclose"] = partial(run_autoclose_loop, s, rt.sessions, rt.clock, on_report=on_report)
    if s.http_bind:  # the API shares this loop, so /readyz and /metrics see the listeners
        parts["api"] = partial(run_api, s, rt.sessions, rt.clock, rt.pipeline)
    return parts


async def _listen(rt: Runtime, mailbox: MailboxSettings, stop: asyncio.Event) -> None:
    listener = MailboxListener(
        mailbox,
        rt.pipeline,
        rt.sessions,
        rt.leases,
        idle_renew_seconds=rt.settings.idle_renew_seconds,
        stop=stop,
        fetch_batch_bytes=rt.settings.imap_fetch_batch_bytes,
    )
    watch_mailbox(rt.pipeline.metrics, mailbox.name, listener)
    await listener.run()


async def check_schema(engine: AsyncEngine, database_url: str) -> None:
    """Refuse to start on a database that is not at the newest Alembic revision."""
    heads = set(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())

    def current(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async with engine.connect() as connection:
        found = await connection.run_sync(current)
    if found != heads:
        shown = ", ".join(sorted(found)) or "empty"
        raise SchemaNotCurrent(
            f"database schema is at {shown}, the code needs {', '.join(sorted(heads))}: "
            "run `mailtickets db upgrade` first"
        )


def check_templates_at_start(settings: Settings) -> None:
    """Render every email template once, as `mailtickets templates check` does; raise TemplatesBroken."""
    folder = settings.templates_dir
    if folder is not None and not folder.is_dir():
        raise TemplatesBroken(f"templates_dir is not a folder: {folder}")
    failures = [error for error in check_templates(folder).values() if error is not None]
    if failures:
        raise TemplatesBroken(
            f"email templates do not render ({'; '.join(failures)}): see `mailtickets templates check`"
        )


async def run(settings: Settings, stop: asyncio.Event | None = None, clock: Clock | None = None) -> None:
    """Run the service until SIGTERM/SIGINT (or `stop` is set)."""
    check_templates_at_start(settings)
    for warning in security_warnings(settings):
        log.warning("%s", warning)
    stop = stop or asyncio.Event()
    engine = create_engine(settings.database_url)
    try:
        await check_store(engine, settings.database_url)
        await check_schema(engine, settings.database_url)
        sessions = session_factory(engine)
        clock = clock or SystemClock()
        leases = Leases(sessions, clock, instance_owner(), settings.lease_seconds)
        async with Pipeline(settings, sessions, clock) as pipeline:
            pipeline.metrics = Metrics()
            rt = Runtime(settings, sessions, clock, pipeline, leases)
            warming = asyncio.create_task(_warm_up(pipeline))  # beside the components: mail may come meanwhile
            try:
                await run_components(build_components(rt), stop)
            finally:
                warming.cancel()
    finally:
        await engine.dispose()


async def _warm_up(pipeline: Pipeline) -> None:
    try:
        await pipeline.parser.warm_up()
    except OSError as exc:  # no worker could start now: the first message will try again, and say why
        log.warning("parse workers not started ahead: %s", exc)


async def run_api_alone(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """`mailtickets api`: only the "api" component, with `run`'s schema check, signals and grace period."""
    engine = create_engine(settings.database_url)
    try:
        await check_store(engine, settings.database_url)
        await check_schema(engine, settings.database_url)
        sessions, clock = session_factory(engine), SystemClock()
        async with Pipeline(settings, sessions, clock) as pipeline:
            await run_components(
                {"api": partial(run_api, settings, sessions, clock, pipeline)}, stop or asyncio.Event()
            )
    finally:
        await engine.dispose()


async def run_components(components: dict[str, Component], stop: asyncio.Event) -> None:
    tasks = {asyncio.create_task(start(stop), name=name): name for name, start in components.items()}
    for task in tasks:
        task.add_done_callback(partial(_on_done, stop))
    _install_signal_handlers(stop, list(tasks))
    log.info("mailtickets running: %s", ", ".join(components) or "nothing to do")
    deadline = asyncio.create_task(_cancel_after_grace(stop, list(tasks)))
    try:
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        deadline.cancel()
        _remove_signal_handlers()
    failures = [r for r in results if isinstance(r, Exception)]
    if failures:
        raise failures[0]
    log.info("mailtickets stopped")


def _on_done(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    if task.cancelled() or task.exception() is None:
        if not stop.is_set():
            log.warning("component %s returned early", task.get_name())
        return
    failure = task.exception()
    if isinstance(failure, CannotListen):  # says all there is to say; the CLI prints it once more on exit
        log.critical("component %s failed; stopping: %s", task.get_name(), failure)
    else:
        log.critical("component %s failed; stopping", task.get_name(), exc_info=failure)
    stop.set()


async def _cancel_after_grace(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    await stop.wait()
    await asyncio.sleep(SHUTDOWN_GRACE_SECONDS)
    _cancel(tasks, "grace period over")


def _cancel(tasks: list[asyncio.Task[None]], why: str) -> None:
    pending = [t for t in tasks if not t.done()]
    if pending:
        log.warning("cancelling %s (%s)", ", ".join(t.get_name() for t in pending), why)
    for task in pending:
        task.cancel()


def _install_signal_handlers(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            _cancel(tasks, f"second {sig.name}")
            return
        log.info("%s received: finishing the work in hand", sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)


def _remove_signal_handlers() -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
