"""/readyz for probes (no API key: it reveals no ticket data) and /metrics for Prometheus (any key).

Both read the pipeline's `Metrics` (set by `mailtickets run`); served alone (`mailtickets api`) the API
has no listeners in its process, so /readyz reports the database only and /metrics the outbox only.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from mailtickets.api.deps import Context, get_reader
from mailtickets.api.errors import ERROR_RESPONSES
from mailtickets.api.probes import database_writable, folder_writable
from mailtickets.db import ping
from mailtickets.ingest.imap import CONNECTED, STANDBY
from mailtickets.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])

OK, UNAVAILABLE = 200, 503


class Readiness(BaseModel):
    status: str  # "ready" or "unavailable"
    database: str  # "ok" or why not (unreachable, not writable, busy)
    data_dir: str  # "ok" or why not (not writable)
    mailboxes: dict[str, str]  # name → "connected", "standby: …" or why not


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(context: Context) -> JSONResponse:
    """Ready when the database and the data folder can be written and every mailbox watched by this
    process is connected."""
    database = "ok"
    try:
        await ping(context.sessions)
    except (SQLAlchemyError, OSError) as exc:
        database = f"unreachable: {type(exc).__name__}"
    if database == "ok":
        database = await database_writable(context.sessions)
    data_dir = await folder_writable(context.settings.data_dir)
    metrics = context.pipeline.metrics
    mailboxes = metrics.mailbox_status() if metrics else {}
    # A standby instance is healthy: another one holds the mailbox, and it takes over when that one stops.
    ready = database == data_dir == "ok" and all(status in (CONNECTED, STANDBY) for status in mailboxes.values())
    body = Readiness(
        status="ready" if ready else "unavailable", database=database, data_dir=data_dir, mailboxes=mailboxes
    )
    return JSONResponse(body.model_dump(), status_code=OK if ready else UNAVAILABLE)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}}, 401: ERROR_RESPONSES[401]},
    dependencies=[Depends(get_reader)],  # any key, read-only ones included (Prometheus: `authorization:`)
)
async def metrics(context: Context) -> Response:
    """Prometheus text format: messages by outcome, ingest latency, outbox, IMAP state, auto-close."""
    current = context.pipeline.metrics or Metrics()  # alone: only what the database can tell
    try:
        async with context.sessions() as session:
            await current.refresh(session)
    except (SQLAlchemyError, OSError) as exc:  # the counters are still worth serving
        log.warning("metrics: outbox not read: %s", type(exc).__name__)
    return Response(current.exposition(), media_type=CONTENT_TYPE)
