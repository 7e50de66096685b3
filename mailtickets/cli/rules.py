"""`mailtickets rules`: list, import and export the routing rules, and dry-run them on a message."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mailtickets.cli.common import CliState, echo_json, pass_state, run_with_store
from mailtickets.db import transaction
from mailtickets.pipeline.dryrun import dry_run
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.rules.model import RulesInvalid, RuleSpec
from mailtickets.rules.store import load_rules, replace_all_rules
from mailtickets.rules.toml_io import dump_rules_toml, load_rules_toml
from mailtickets.settings import Settings


@click.group()
def rules() -> None:
    """Routing rules: applied in order to every new message."""


@rules.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@pass_state
def list_rules(state: CliState, as_json: bool) -> None:
    """Show every rule in order, disabled ones included."""
    specs = _load_all(state.settings)
    if as_json:
        echo_json([{"position": n, **_summary(s)} for n, s in enumerate(specs, 1)])
        return
    for n, spec in enumerate(specs, 1):
        flags = ("" if spec.enabled else " [disabled]") + (" [stop]" if spec.stop else "")
        click.echo(
            f"{n:>3}. {spec.name}{flags}: {len(spec.conditions)} condition(s), match {spec.match}; "
            f"{', '.join(a.kind for a in spec.actions)}"
        )


@rules.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@pass_state
def export_rules(state: CliState, file: Path) -> None:
    """Write every rule to FILE (TOML), in order, for version control."""
    specs = _load_all(state.settings)
    file.write_text(dump_rules_toml(specs), encoding="utf-8")
    click.echo(f"exported {len(specs)} rule(s) to {file}")


@rules.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_state
def import_rules(state: CliState, file: Path) -> None:
    """Replace all rules with those in FILE (TOML); nothing changes unless every rule is valid."""
    try:
        specs = load_rules_toml(file.read_text(encoding="utf-8"))
    except (RulesInvalid, UnicodeDecodeError) as exc:
        problems = exc.problems if isinstance(exc, RulesInvalid) else [f"not UTF-8 text: {exc}"]
        for problem in problems:
            click.echo(f"{file}: {problem}", err=True)
        raise click.ClickException(f"{file}: refused, no rule was changed") from exc
    actor = getpass.getuser()

    async def work(sessions: async_sessionmaker[AsyncSession]) -> None:
        async with transaction(sessions) as session:
            await replace_all_rules(session, specs, actor)

    run_with_store(state.settings, work)
    click.echo(f"imported {len(specs)} rule(s) from {file}")


@rules.command("test")
@click.argument("message", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", default="pipe", show_default=True, help="Mailbox (intake source) to pretend it came from.")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@pass_state
def test_rules(state: CliState, message: Path, source: str, as_json: bool) -> None:
    """Dry run: what ingest would do with MESSAGE (.eml) and how the rules treat it. Writes nothing."""
    raw = message.read_bytes()

    async def work(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
        return await dry_run(Pipeline(state.settings, sessions), raw, source)

    report = run_with_store(state.settings, work)
    if as_json:
        echo_json(report)
    else:
        _print_report(report)


def _load_all(settings: Settings) -> tuple[RuleSpec, ...]:
    async def work(sessions: async_sessionmaker[AsyncSession]) -> tuple[RuleSpec, ...]:
        async with sessions() as session:
            return await load_rules(session)

    return run_with_store(settings, work)


def _summary(spec: RuleSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "enabled": spec.enabled,
        "match": spec.match,
        "stop": spec.stop,
        "conditions": len(spec.conditions),
        "actions": [a.kind for a in spec.actions],
    }


def _print_report(report: dict[str, Any]) -> None:
    message = report["message"]
    click.echo(
        f"message {message['message_id'] or '(no Message-ID)'} from {message['from'] or '(no sender)'}, "
        f"mailbox {message['mailbox']}"
    )
    for entry in report["rules"]:
        on = f"  (condition {entry['condition_index']}: {entry['condition']})" if entry["condition"] else ""
        click.echo(f"{entry['position']:>3}. {entry['name']}: {entry['state']}{on}")
    click.echo("result:")
    for key, value in report["result"].items():
        if value not in (None, [], False):
            click.echo(f"  {key}: {', '.join(value) if isinstance(value, list) else value}")
