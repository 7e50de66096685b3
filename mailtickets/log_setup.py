"""Logging set-up for the long-running commands: readable lines by default, JSON lines on request.

`settings.log_format = "json"` gives one JSON object per line (time, level, logger, message, and the
exception if any), for log shippers.  The pipeline already logs one line per message with its
Message-ID, outcome and ticket; this module only decides how lines look.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from mailtickets.redact import SecretRedactingFormatter, guard_imap_logger, secret_values
from mailtickets.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LOGGERS = ("mail.log", "aiosqlite", "uvicorn.access")  # per-command chatter of libraries


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """Install one handler on the root logger (replacing any), at `settings.log_level`."""
    handler = logging.StreamHandler()
    inner = JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(SecretRedactingFormatter(inner, secret_values(settings)))
    guard_imap_logger()
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
