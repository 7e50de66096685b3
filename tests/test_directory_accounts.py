"""Console accounts: `agents add --role`, `agents set-password` (prompt or --generate), argon2 hashes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailtickets.cli import main
from mailtickets.db import create_engine, session_factory, upgrade
from mailtickets.directory.accounts import verify_password
from mailtickets.models import Agent, AgentRole


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    monkeypatch.setenv("MAILTICKETS_DATABASE_URL", url)
    return url


def _agent(url: str, email: str) -> Agent:
    async def load() -> Agent:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                return (await session.scalars(select(Agent).where(Agent.email == email))).one()
        finally:
            await engine.dispose()

    return asyncio.run(load())


def test_add_admin_and_generate_a_one_time_password(url: str) -> None:
    runner = CliRunner()
    added = runner.invoke(main, ["agents", "add", "--name", "Ann", "--email", "ann@support.example", "--role", "admin"])
    assert added.exit_code == 0, added.output
    generated = runner.invoke(main, ["agents", "set-password", "ann@support.example", "--generate"])
    assert generated.exit_code == 0, generated.output
    password = generated.output.strip().splitlines()[-1]
    agent = _agent(url, "ann@support.example")
    assert agent.role == AgentRole.ADMIN
    assert agent.password_hash is not None and agent.password_hash.startswith("$argon2id$")
    assert password not in agent.password_hash
    assert verify_password(agent, password) and not verify_password(agent, password + "x")
    listed = json.loads(runner.invoke(main, ["agents", "list", "--json"]).output)
    assert listed[0]["role"] == "admin" and listed[0]["can_log_in"] is True


def test_set_password_prompts_twice_and_refuses_a_short_one(url: str) -> None:
    runner = CliRunner()
    runner.invoke(main, ["agents", "add", "--name", "Bo", "--email", "bo@support.example"])
    short = runner.invoke(main, ["agents", "set-password", "bo@support.example"], input="short\nshort\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    twice = "correct horse\ncorrect horse\n"
    typed = runner.invoke(main, ["agents", "set-password", "bo@support.example"], input=twice)
    assert typed.exit_code == 0 and "correct horse" not in typed.output.replace("Password", "")
    agent = _agent(url, "bo@support.example")
    assert agent.role == AgentRole.AGENT and verify_password(agent, "correct horse")
    unknown = runner.invoke(main, ["agents", "set-password", "nobody@support.example", "--generate"])
    assert unknown.exit_code == 1 and "no agent" in unknown.output


def test_an_inactive_agent_or_one_without_password_cannot_log_in() -> None:
    assert not verify_password(None, "anything at all")
    assert not verify_password(Agent(name="x", email="x@y.example", active=True, password_hash=None), "")
