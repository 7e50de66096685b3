"""The database edge of the rules: load, replace, create, update, delete, and a cache for the pipeline.

Every function takes an AsyncSession inside the caller's transaction and only flushes; the caller commits
(or rolls back, which undoes the rule change and its audit row together).  Every change writes a
RuleChange row with the actor (the OS user for the CLI, the API key name for the API) and a snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mailtickets.db import VersionedCache
from mailtickets.errors import Conflict, NotFound
from mailtickets.models import Rule, RuleChange
from mailtickets.rules.compile import CompiledRule, compile_rule, compile_rules
from mailtickets.rules.model import RulesInvalid, RuleSpec, spec_from_dict, spec_to_dict, with_position

logger = logging.getLogger(__name__)


async def load_rules(session: AsyncSession, *, enabled_only: bool = False) -> tuple[RuleSpec, ...]:
    """All rules (or the enabled ones) in order; raises RulesInvalid if a stored rule no longer validates."""
    specs = []
    for row in await _rows(session, enabled_only):
        spec, problems = spec_from_dict(_row_data(row))
        if spec is None:
            raise RulesInvalid(problems)
        specs.append(with_position(spec, row.position))
    return tuple(specs)


async def get_rule(session: AsyncSession, name: str) -> RuleSpec:
    row = await _find(session, name)
    spec, problems = spec_from_dict(_row_data(row))
    if spec is None:
        raise RulesInvalid(problems)
    return with_position(spec, row.position)


async def replace_all_rules(session: AsyncSession, specs: Sequence[RuleSpec], actor: str) -> None:
    """Import: the given rules, in the given order, become the only rules."""
    compile_rules(specs)  # all or nothing: refuse before touching anything
    old_names = set((await session.scalars(select(Rule.name))).all())
    await session.execute(delete(Rule))
    for position, spec in enumerate(specs):
        session.add(_new_row(with_position(spec, position), actor))
        _record(session, spec.name, "import", actor, with_position(spec, position))
    for name in sorted(old_names - {s.name for s in specs}):
        _record(session, name, "delete", actor, None)
    await session.flush()


async def create_rule(session: AsyncSession, spec: RuleSpec, actor: str, position: int | None = None) -> RuleSpec:
    """Add one rule, at the end unless a position is given; Conflict if the name is taken."""
    compile_rule(spec)
    await _check_name_free(session, spec.name)
    if position is None:
        last = await session.scalar(select(func.max(Rule.position)))
        position = 0 if last is None else last + 1
    spec = with_position(spec, position)
    session.add(_new_row(spec, actor))
    _record(session, spec.name, "create", actor, spec)
    await session.flush()
    return spec


async def update_rule(
    session: AsyncSession, name: str, spec: RuleSpec, actor: str, position: int | None = None
) -> RuleSpec:
    """Replace the rule called `name` (which may be renamed); it keeps its place unless given one."""
    compile_rule(spec)
    row = await _find(session, name)
    if spec.name.casefold() != name.casefold():
        await _check_name_free(session, spec.name)
    spec = with_position(spec, row.position if position is None else position)
    _fill_row(row, spec, actor)
    _record(session, spec.name, "update", actor, spec)
    await session.flush()
    return spec


async def delete_rule(session: AsyncSession, name: str, actor: str) -> None:
    row = await _find(session, name)
    await session.delete(row)
    _record(session, row.name, "delete", actor, None)
    await session.flush()


class RuleCache:
    """Compiled enabled rules, re-read only when the directory counter moved (db.VersionedCache).

    Checked at most once per transaction: the messages of one group commit share the check, so a change
    applies from the next batch on, without a restart.
    """

    def __init__(self) -> None:
        self._cache = VersionedCache(_load_usable)

    async def active_rules(self, session: AsyncSession) -> tuple[CompiledRule, ...]:
        return await self._cache.get(session)


async def _load_usable(session: AsyncSession) -> tuple[CompiledRule, ...]:
    return _compile_usable(await _rows(session, enabled_only=True))


def _compile_usable(rows: Sequence[Rule]) -> tuple[CompiledRule, ...]:
    # A stored rule that no longer validates (edited by hand in the database) is skipped, loudly,
    # rather than stopping intake.
    compiled = []
    for row in rows:
        spec, problems = spec_from_dict(_row_data(row))
        try:
            if spec is None:
                raise RulesInvalid(problems)
            compiled.append(compile_rule(with_position(spec, row.position)))
        except RulesInvalid as exc:
            logger.error("rule %r skipped: %s", row.name, exc)
    return tuple(compiled)


async def _rows(session: AsyncSession, enabled_only: bool) -> Sequence[Rule]:
    query = select(Rule).order_by(Rule.position, Rule.id)
    if enabled_only:
        query = query.where(Rule.enabled.is_(True))
    return (await session.scalars(query)).all()


async def _find(session: AsyncSession, name: str) -> Rule:
    row = await session.scalar(select(Rule).where(func.lower(Rule.name) == name.lower()))
    if row is None:
        raise NotFound(f"no rule named {name!r}")
    return row


async def _check_name_free(session: AsyncSession, name: str) -> None:
    taken = await session.scalar(select(Rule.id).where(func.lower(Rule.name) == name.lower()))
    if taken is not None:
        raise Conflict(f"a rule named {name!r} already exists")


def _row_data(row: Rule) -> dict[str, Any]:
    return {
        "name": row.name,
        "enabled": row.enabled,
        "match": row.match,
        "stop": row.stop,
        "conditions": row.conditions,
        "actions": row.actions,
    }


def _new_row(spec: RuleSpec, actor: str) -> Rule:
    row = Rule()
    _fill_row(row, spec, actor)
    return row


def _fill_row(row: Rule, spec: RuleSpec, actor: str) -> None:
    data = spec_to_dict(spec)
    row.name = spec.name
    row.enabled = spec.enabled
    row.position = spec.position
    row.match = spec.match
    row.stop = spec.stop
    row.conditions = data["conditions"]
    row.actions = data["actions"]
    row.updated_by = actor


def _record(session: AsyncSession, name: str, change: str, actor: str, spec: RuleSpec | None) -> None:
    snapshot = None if spec is None else spec_to_dict(spec) | {"position": spec.position}
    session.add(RuleChange(rule_name=name, change=change, actor=actor, snapshot=snapshot))
