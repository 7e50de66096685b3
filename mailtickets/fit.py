"""Every value fitted to its column before it reaches the database: one helper, on every write path.

PostgreSQL refuses a string longer than its VARCHAR and any NUL character, and no driver can send a
lone surrogate; SQLite takes all three. A refusal there is not the sender's fault nor a passing one, so
nothing may reach the database unfitted: `fit_columns` gives every String, Text and JSON column of the
model a type that, at bind time (ORM and Core statements alike, lookups too), removes NUL characters,
replaces lone surrogates and cuts what is longer than the column, ending it with CUT_MARK.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import JSON, MetaData, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

CUT_MARK = "…"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def fit_text(value: str, length: int | None = None) -> str:
    """`value` without NUL or lone surrogates, at most `length` characters (cut values end in CUT_MARK)."""
    if _UNSTORABLE.search(value):
        value = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if length is not None and len(value) > length:
        value = value[: max(length - len(CUT_MARK), 0)] + CUT_MARK[:length]
    return value


def fit_json(value: Any) -> Any:
    """Every string inside a JSON value fitted (no length: JSON columns have none)."""
    if isinstance(value, str):
        return fit_text(value)
    if isinstance(value, list | tuple):
        return [fit_json(item) for item in value]
    if isinstance(value, dict):
        return {fit_text(str(key)): fit_json(item) for key, item in value.items()}
    return value


class FittedString(TypeDecorator[str]):
    """VARCHAR(n) whose values are fitted to n characters."""

    impl = String
    cache_ok = True

    def __init__(self, length: int | None = None) -> None:
        super().__init__(length)
        self.length = length

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else fit_text(value, self.length)


class FittedText(TypeDecorator[str]):
    """TEXT whose values hold no NUL or lone surrogate."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else fit_text(value)


class FittedJSON(TypeDecorator[Any]):
    """JSON whose strings hold no NUL or lone surrogate."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return fit_json(value)


def fit_columns(metadata: MetaData) -> None:
    """Give every plain String, Text and JSON column of `metadata` its fitted type (same DDL)."""
    for table in metadata.tables.values():
        for column in table.columns:
            kind = type(column.type)
            if kind is String:
                column.type = FittedString(column.type.length)  # type: ignore[attr-defined]
            elif kind is Text:
                column.type = FittedText()
            elif kind is JSON:
                column.type = FittedJSON()
