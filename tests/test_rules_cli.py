from __future__ import annotations

import asyncio
import json
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rules_support import count_rows

from mailtickets.cli import main
from mailtickets.db import create_engine, session_factory, transaction, upgrade
from mailtickets.models import Client, ClientDomain, Contact, InboundMail, Rule, RuleChange, Ticket

RULES = """\
[[rule]]
name = "Acme outage"
conditions = [
  { field = "from_domain", op = "equals", value = "acme.example" },
  { field = "subject", op = "regex", value = "outage|down" },
]
actions = [{ action = "set_priority", value = "high" }, { action = "add_tag", value = "outage" }]

[[rule]]
name = "Off"
enabled = false
actions = [{ action = "add_tag", value = "never" }]

[[rule]]
name = "Billing"
conditions = [{ field = "subject", op = "contains", value = "invoice" }]
actions = [{ action = "set_category", value = "Billing" }]
"""
TABLES = (Rule, RuleChange, Ticket, InboundMail, Client, Contact)


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    asyncio.run(_seed_client(url))
    return url


async def _seed_client(url: str) -> None:
    engine = create_engine(url)
    async with transaction(session_factory(engine)) as session:
        session.add(Client(name="Acme", domains=[ClientDomain(domain="acme.example")]))
    await engine.dispose()


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["rules", *args], env={"MAILTICKETS_DATABASE_URL": url})


def counts(url: str) -> dict[str, int]:
    async def count() -> dict[str, int]:
        engine = create_engine(url)
        try:
            return await count_rows(session_factory(engine), *TABLES)
        finally:
            await engine.dispose()

    return asyncio.run(count())


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def eml(tmp_path: Path, sender: str, subject: str) -> str:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@help.example"
    message["Subject"] = subject
    message["Message-ID"] = "<t1@acme.example>"
    message.set_content("Nothing works.")
    path = tmp_path / "m.eml"
    path.write_bytes(message.as_bytes())
    return str(path)


def test_import_list_export_round_trip(url: str, tmp_path: Path) -> None:
    result = run(url, "import", write(tmp_path / "rules.toml", RULES))
    assert result.exit_code == 0, result.output
    assert "imported 3 rule(s)" in result.output
    listed = json.loads(run(url, "list", "--json").output)
    assert [(r["position"], r["name"], r["enabled"]) for r in listed] == [
        (1, "Acme outage", True),
        (2, "Off", False),
        (3, "Billing", True),
    ]
    assert run(url, "export", str(tmp_path / "out.toml")).exit_code == 0
    before = counts(url)
    assert run(url, "import", str(tmp_path / "out.toml")).exit_code == 0
    assert run(url, "list", "--json").output == json.dumps(listed, ensure_ascii=False) + "\n"
    assert counts(url)[RuleChange.__tablename__] == before[RuleChange.__tablename__] + 3


def test_invalid_import_is_refused_and_changes_nothing(url: str, tmp_path: Path) -> None:
    run(url, "import", write(tmp_path / "rules.toml", RULES))
    before = counts(url)
    bad = RULES.replace('op = "contains", value = "invoice"', 'op = "regex", value = "(?<=in)voice"')
    result = run(url, "import", write(tmp_path / "bad.toml", bad))
    assert result.exit_code == 1
    assert "line 16: rule 'Billing', conditions[1].value: regular expression refused" in result.output
    assert "no rule was changed" in result.output
    assert counts(url) == before


def test_dry_run_explains_and_never_writes(url: str, tmp_path: Path) -> None:
    run(url, "import", write(tmp_path / "rules.toml", RULES))
    before = counts(url)
    message = eml(tmp_path, "Alice <alice@acme.example>", "Mail server down")
    report = json.loads(run(url, "test", message, "--json", "--source", "support").output)
    assert [(r["name"], r["state"], r["condition"]) for r in report["rules"]] == [
        ("Acme outage", "matched", 'subject regex "outage|down"'),
        ("Off", "disabled", None),
        ("Billing", "not matched", 'subject contains "invoice"'),
    ]
    assert report["result"]["client"] == "Acme"
    assert report["result"]["priority"] == "high"
    assert report["result"]["tags"] == ["outage"]
    assert report["message"]["sender_known"] is True
    text = run(url, "test", message).output
    assert '1. Acme outage: matched  (condition 2: subject regex "outage|down")' in text
    assert "priority: high" in text
    assert counts(url) == before


def test_dry_run_reports_the_outcome_ingest_would_give(url: str, tmp_path: Path) -> None:
    known = json.loads(run(url, "test", eml(tmp_path, "Bob <bob@acme.example>", "Printer"), "--json").output)
    assert (known["result"]["outcome"], known["result"]["ticket"]) == ("created", "TCK-1")
    stranger = run(url, "test", eml(tmp_path, "Eve <eve@elsewhere.example>", "Hello"), "--json")
    result = json.loads(stranger.output)["result"]
    assert result["outcome"] == "quarantined" and result["ticket"] is None
    assert result["reason"] == "unknown sender eve@elsewhere.example and no ticket reference"
    text = run(url, "test", eml(tmp_path, "Eve <eve@elsewhere.example>", "Hello")).output
    assert "  outcome: quarantined" in text and "  reason: unknown sender eve@elsewhere.example" in text
    garbage = tmp_path / "garbage.eml"
    garbage.write_bytes(b"\x00\x01 not mail")
    assert json.loads(run(url, "test", str(garbage), "--json").output)["result"]["outcome"] == "quarantined"
