"""LMTP intake (aiosmtpd): Postfix or Exim deliver straight into the pipeline.

The reply to DATA comes only after the pipeline committed the message: 250 then, 451 4.3.0 when the
store is unavailable (the MTA keeps the mail and retries), 552 5.3.4 for mail over the size limit.
LMTP answers DATA once per accepted recipient; the message is ingested once whatever their number.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, AnyStr

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import Envelope, Session

from mailtickets.errors import CannotListen, TemporaryError
from mailtickets.ingest.result import Ingestor

log = logging.getLogger(__name__)

SOURCE = "lmtp"
SERVER_HOSTNAME = "mailtickets"
_AIOSMTPD_TOO_BIG = "552 Error: Too much mail data"
DEFAULT_CONCURRENT_DELIVERIES = 4


def parse_bind(bind: str) -> tuple[str, int]:
    """'127.0.0.1:8024' or '[::1]:8024' → (host, port)."""
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"LMTP bind must be host:port, not {bind!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class LmtpHandler:
    """aiosmtpd handler: one hook, DATA. At most `max_concurrent` deliveries are processed at once."""

    def __init__(self, ingestor: Ingestor, max_concurrent: int = DEFAULT_CONCURRENT_DELIVERIES) -> None:
        self._ingestor = ingestor
        self._slots = asyncio.Semaphore(max(1, max_concurrent))

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            async with self._slots:  # the others wait here, their connection open: the MTA just sees a slow reply
                result = await self._ingestor.ingest(raw, SOURCE)
        except TemporaryError as exc:
            log.warning("LMTP delivery deferred: %s", exc)
            status = "451 4.3.0 mail store unavailable, try again later"
        except Exception:  # the worker boundary: whatever failed, the MTA keeps the mail and retries
            log.exception("LMTP delivery failed")
            status = "451 4.3.0 internal error, try again later"
        else:
            status = f"250 2.0.0 {result.outcome.value} {result.ticket or ''}".rstrip()
        return per_recipient(status, len(envelope.rcpt_tos))


def per_recipient(status: str, recipients: int) -> str:
    return "\r\n".join([status] * max(1, recipients))


class LmtpServer(LMTP):
    """aiosmtpd's LMTP with a size-limit reply that is LMTP-shaped and says why."""

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str) and status == _AIOSMTPD_TOO_BIG and self.envelope is not None:
            reason = f"552 5.3.4 message exceeds the size limit of {self.data_size_limit} bytes"
            await super().push(per_recipient(reason, len(self.envelope.rcpt_tos)))
            return
        await super().push(status)


async def serve_lmtp(
    bind: str,
    ingestor: Ingestor,
    max_message_bytes: int,
    stop: asyncio.Event,
    *,
    max_concurrent: int = DEFAULT_CONCURRENT_DELIVERIES,
) -> None:
    """Listen on `bind` until `stop` is set."""
    host, port = parse_bind(bind)
    handler = LmtpHandler(ingestor, max_concurrent)
    loop = asyncio.get_running_loop()

    def protocol() -> LmtpServer:
        return LmtpServer(handler, data_size_limit=max_message_bytes, enable_SMTPUTF8=True, hostname=SERVER_HOSTNAME)

    try:
        server = await loop.create_server(protocol, host, port)
    except OSError as exc:
        raise CannotListen(f"cannot listen on {bind} (lmtp_bind): {os.strerror(exc.errno or 0).lower()}") from exc
    log.info("LMTP listening on %s:%d", host, port)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        log.info("LMTP stopped")
