from __future__ import annotations

from pathlib import Path

import pytest
from rules_support import cond, count_rows, open_db, rule, tag
from sqlalchemy import select, update

from mailtickets.db import transaction
from mailtickets.errors import Conflict, NotFound
from mailtickets.models import Rule, RuleChange
from mailtickets.rules import RulesInvalid, RuleSpec
from mailtickets.rules.model import Condition
from mailtickets.rules.store import (
    RuleCache,
    create_rule,
    delete_rule,
    get_rule,
    load_rules,
    replace_all_rules,
    update_rule,
)

A = rule("a", [cond("from_domain", "equals", "acme.example")], [tag("acme")])
B = rule("b", [cond("subject", "regex", "down|outage")], [{"action": "set_priority", "value": "high"}])
OFF = rule("off", [], [tag("off")], enabled=False)


async def test_replace_all_keeps_order_and_audits(tmp_path: Path) -> None:
    _, engine, sessions = await open_db(tmp_path)
    async with transaction(sessions) as session:
        await create_rule(session, rule("old", [], [tag("x")]), "alice")
    async with transaction(sessions) as session:
        await replace_all_rules(session, [B, A, OFF], "bob")
    async with sessions() as session:
        assert [s.name for s in await load_rules(session)] == ["b", "a", "off"]
        assert [s.name for s in await load_rules(session, enabled_only=True)] == ["b", "a"]
        changes = (await session.execute(select(RuleChange.rule_name, RuleChange.change, RuleChange.actor))).all()
    assert [tuple(c) for c in changes] == [
        ("old", "create", "alice"),
        ("b", "import", "bob"),
        ("a", "import", "bob"),
        ("off", "import", "bob"),
        ("old", "delete", "bob"),
    ]
    await engine.dispose()


async def test_invalid_import_changes_nothing(tmp_path: Path) -> None:
    _, engine, sessions = await open_db(tmp_path)
    async with transaction(sessions) as session:
        await replace_all_rules(session, [A], "alice")
    before = await count_rows(sessions, Rule, RuleChange)
    broken = RuleSpec("bad", conditions=(Condition("subject", "regex", "(a)\\1"),), actions=A.actions)
    with pytest.raises(RulesInvalid, match="regular expression refused"):
        async with transaction(sessions) as session:
            await replace_all_rules(session, [B, broken], "bob")
    assert await count_rows(sessions, Rule, RuleChange) == before
    await engine.dispose()


async def test_create_update_delete_single_rules(tmp_path: Path) -> None:
    _, engine, sessions = await open_db(tmp_path)
    async with transaction(sessions) as session:
        assert (await create_rule(session, A, "api:deploy")).position == 0
        assert (await create_rule(session, B, "api:deploy")).position == 1
        with pytest.raises(Conflict):
            await create_rule(session, rule("A", [], [tag("dup")]), "api:deploy")
    async with transaction(sessions) as session:
        renamed = rule("a2", [], [tag("renamed")])
        assert (await update_rule(session, "a", renamed, "api:ops")).position == 0
        await delete_rule(session, "b", "api:ops")
        with pytest.raises(NotFound):
            await delete_rule(session, "b", "api:ops")
    async with sessions() as session:
        assert (await get_rule(session, "A2")).actions == renamed.actions
        snapshots = (await session.scalars(select(RuleChange.snapshot).order_by(RuleChange.id))).all()
    assert snapshots[2] == {
        **{"name": "a2", "enabled": True, "match": "all", "stop": False},
        "conditions": [],
        "actions": [{"action": "add_tag", "value": "renamed"}],
        "position": 0,
    }
    assert snapshots[3] is None
    await engine.dispose()


async def test_cache_sees_a_change_on_the_next_call(tmp_path: Path) -> None:
    _, engine, sessions = await open_db(tmp_path)
    cache = RuleCache()
    async with transaction(sessions) as session:
        await replace_all_rules(session, [A, OFF], "alice")
    async with sessions() as session:
        first = await cache.active_rules(session)
        assert [r.name for r in first] == ["a"]
        assert await cache.active_rules(session) is first  # unchanged: not re-read
    async with transaction(sessions) as session:
        await create_rule(session, B, "alice")
    async with sessions() as session:
        assert [r.name for r in await cache.active_rules(session)] == ["a", "b"]
    async with transaction(sessions) as session:  # a change made behind the module's back
        await session.execute(update(Rule).where(Rule.name == "a").values(enabled=False, position=5))
        await session.execute(Rule.__table__.delete().where(Rule.name == "off"))
    async with sessions() as session:
        assert [r.name for r in await cache.active_rules(session)] == ["b"]
    await engine.dispose()


async def test_cache_skips_a_stored_rule_that_no_longer_validates(tmp_path: Path) -> None:
    _, engine, sessions = await open_db(tmp_path)
    async with transaction(sessions) as session:
        await replace_all_rules(session, [A, B], "alice")
        await session.execute(update(Rule).where(Rule.name == "b").values(actions=[{"action": "paint"}]))
    async with sessions() as session:
        assert [r.name for r in await RuleCache().active_rules(session)] == ["a"]
    await engine.dispose()
