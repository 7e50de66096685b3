"""The rules dry run: what ingest would do with a message, beside the rule trace that explains it.

The outcome comes from `Pipeline.rehearse` (ingest's own decision code, rolled back, no file written), so
the CLI (`mailtickets rules test`), the API (`POST /api/v1/rules/dry-run`) and the console can never
promise a ticket for mail that ingest would quarantine or drop.
"""

from __future__ import annotations

from typing import Any

from mailtickets.pipeline.decide import facts_for
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.rules.compile import compile_rules
from mailtickets.rules.dryrun import dry_run_report
from mailtickets.rules.store import load_rules


async def dry_run(pipeline: Pipeline, raw: bytes, source: str, *, anew: int | None = None) -> dict[str, Any]:
    """The report of `mailtickets rules test --json`: message, rules (each with its state), result.

    `anew`: the trace entry the bytes were kept for, dry-run as if it arrived now (not its own duplicate)."""
    rehearsal = await pipeline.rehearse(raw, source, anew=anew)
    # Rolled back, so the store is as it was: the rules see what they would have seen in ingest.
    async with pipeline.sessions() as session:  # read only: closed without a commit
        specs = await load_rules(session)
        parsed = rehearsal.parsed
        facts = await facts_for(session, parsed, source) if parsed is not None else None
    return dry_run_report(compile_rules(specs), facts, rehearsal.result)
