"""Every value is fitted to its column: the longest and oddest value of every field of every table is
written on SQLite and PostgreSQL, and comes back cut with the marker, without NUL or lone surrogates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Column, Enum, Table, delete, insert, select
from sqlalchemy.sql.type_api import TypeEngine

from mailtickets.fit import CUT_MARK, FittedJSON, FittedString, FittedText, fit_text
from mailtickets.models import Base, UTCDateTime
from tests.conftest import Store

ODD = "é\x00\ud800x"  # an accent, a NUL, a lone surrogate: each refused by PostgreSQL or its driver
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_fit_text_cuts_with_the_marker_and_removes_what_cannot_be_stored() -> None:
    assert fit_text("abcdef", 4) == "abc" + CUT_MARK
    assert fit_text("abcd", 4) == "abcd"
    assert fit_text("a\x00b\ud800c") == "ab?c"
    assert fit_text("\x00" * 10, 3) == ""


def _odd_value(column: Column[Any]) -> Any:
    kind: TypeEngine[Any] = column.type
    if column.foreign_keys:
        return 1 if not column.nullable else None
    if isinstance(kind, FittedString):
        return ODD * (kind.length or 10) + "tail"
    if isinstance(kind, FittedText):
        return ODD * 1000
    if isinstance(kind, FittedJSON):
        return [ODD, {"key" + ODD: ODD}]
    if isinstance(kind, Enum):
        return kind.enums[0]
    if isinstance(kind, UTCDateTime):
        return NOW
    python_type = kind.python_type
    return {int: 1, bool: True, bytes: b"\x00raw"}[python_type]


def _no_unstorable(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" not in value and not any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, list):
        return all(_no_unstorable(item) for item in value)
    if isinstance(value, dict):
        return all(_no_unstorable(k) and _no_unstorable(v) for k, v in value.items())
    return True


def _check_column(table: Table, column: Column[Any], stored: Any) -> None:
    where = f"{table.name}.{column.name}"
    assert _no_unstorable(stored), where
    if isinstance(column.type, FittedString) and column.type.length:
        assert len(stored) == column.type.length, where
        assert stored.endswith(CUT_MARK), where


def test_every_string_text_and_json_column_is_fitted() -> None:
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if type(column.type).__name__ in ("String", "Text", "JSON"):
                pytest.fail(f"{table.name}.{column.name} is not fitted")


async def test_the_longest_and_oddest_value_of_every_field_is_stored(store: Store) -> None:
    async with store.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):  # rows the migrations seed (the change counter)
            await connection.execute(delete(table))
        for table in Base.metadata.sorted_tables:
            row = {column.name: _odd_value(column) for column in table.columns}
            await connection.execute(insert(table).values(row))
    async with store.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            stored = (await connection.execute(select(table))).mappings().one()
            for column in table.columns:
                _check_column(table, column, stored[column.name])
