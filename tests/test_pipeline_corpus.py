"""Robustness: every message of the external corpus (../shared/corpus, GPL data kept outside the repo)
and arbitrary bytes get an outcome from the pipeline, and nothing raises."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailtickets.models import Outcome
from mailtickets.parse import parse_message
from mailtickets.parse.parser import UnparseableMessage
from tests.builders import make_message
from tests.conftest import Store
from tests.world import build_world

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FIXTURES = Path(__file__).parent / "fixtures" / "eml"
CORPUS_FILES = sorted(p for p in CORPUS.glob("*/*") if p.is_file() and p.name != "README.md") if CORPUS.is_dir() else []


@pytest.mark.skipif(not CORPUS_FILES, reason=f"external corpus not found at {CORPUS}")
async def test_every_corpus_message_gets_an_outcome(sqlite_store: Store) -> None:
    await build_world(sqlite_store.sessions, sqlite_store.clock)
    pipeline = sqlite_store.pipeline()
    outcomes: dict[str, Outcome] = {}
    for path in CORPUS_FILES:
        result = await pipeline.ingest(path.read_bytes(), f"corpus:{path.parent.name}")
        outcomes[path.name] = result.outcome
        assert result.outcome in Outcome, path
        if result.outcome in (Outcome.QUARANTINED, Outcome.DROPPED):
            assert result.reason, f"{path.name}: {result.outcome} without a reason"
    assert len(outcomes) == len(CORPUS_FILES)
    # The bounce (multipart/report) in RT's data is automatic mail: it must never become a ticket.
    if "multipart-report.eml" in outcomes:
        assert outcomes["multipart-report.eml"] == Outcome.DROPPED


@pytest.mark.skipif(not CORPUS_FILES, reason=f"external corpus not found at {CORPUS}")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_parses_to_clean_unicode(path: Path) -> None:
    parsed = parse_message(path.read_bytes())
    for value in (parsed.subject, parsed.text, parsed.sender_name, *(a.filename for a in parsed.attachments)):
        value.encode("utf-8")  # raises on lone surrogates, which would break JSON and the database
        assert not any("\x00" <= ch < " " and ch not in "\t\n\r" for ch in parsed.subject)


def _seed_messages() -> list[bytes]:
    seeds = [
        make_message(),
        make_message(html="<p>Hi<script>x()</script></p>", attachments=[("a.pdf", "application/pdf", b"%PDF")]),
    ]
    seeds.extend(p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))[:20])
    return seeds


def _mutate(raw: bytes, position: int, junk: bytes, cut: int) -> bytes:
    position %= max(len(raw), 1)
    return raw[:position] + junk + raw[position + cut :]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(min_value=0, max_value=1000),
    position=st.integers(min_value=0, max_value=100_000),
    junk=st.binary(max_size=200),
    cut=st.integers(min_value=0, max_value=500),
)
async def test_mutated_messages_always_get_an_outcome(
    sqlite_store: Store, seed: int, position: int, junk: bytes, cut: int
) -> None:
    seeds = _seed_messages()
    raw = _mutate(seeds[seed % len(seeds)], position, junk, cut)
    result = await sqlite_store.pipeline().ingest(raw, "fuzz")
    assert result.outcome in Outcome
    # The pipeline quarantines on a parser bug rather than lose the mail; here that is still a failure.
    assert not (result.reason or "").startswith("parser failure"), result.reason


@given(raw=st.binary(max_size=3000))
def test_arbitrary_bytes_parse_or_fail_with_a_reason(raw: bytes) -> None:
    try:
        parsed = parse_message(raw)
    except UnparseableMessage as exc:
        assert str(exc)
        return
    parsed.subject.encode("utf-8")
    parsed.text.encode("utf-8")
