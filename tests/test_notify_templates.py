from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailtickets.cli import main
from mailtickets.notify.templates import (
    BUILTIN_DIR,
    KINDS,
    TemplateError,
    check_templates,
    make_environment,
    render,
    sample_context,
)


def test_every_kind_has_its_three_templates() -> None:
    for kind in KINDS:
        for suffix in (".subject.txt", ".txt", ".html"):
            assert (BUILTIN_DIR / f"{kind}{suffix}").is_file()
    assert check_templates() == dict.fromkeys(KINDS)


def test_html_is_escaped_text_is_not() -> None:
    rendered = render(make_environment(), "new_ticket", sample_context())
    assert "&lt;b&gt;text&lt;/b&gt;" in rendered.html and "<b>text</b>" not in rendered.html
    assert "<b>text</b>" in rendered.text
    assert rendered.subject == "[TCK-12] New ticket: Printer on fire <urgent> & smoking"


def test_subject_is_one_line() -> None:
    context = replace(sample_context(), ticket=replace(sample_context().ticket, subject="two\nlines"))
    assert render(make_environment(), "acknowledgement", context).subject == "[TCK-12] two lines"


def test_override_folder_wins_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "acknowledgement.subject.txt").write_text("Wir haben es: {{ ticket.reference }}")
    env = make_environment(tmp_path)
    assert render(env, "acknowledgement", sample_context()).subject == "Wir haben es: TCK-12"
    assert render(env, "closed", sample_context()).subject.startswith("[TCK-12] Closed")


def test_undefined_variable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "chaser.txt").write_text("Hello {{ recipent_name }}")
    with pytest.raises(TemplateError, match="recipent_name"):
        render(make_environment(tmp_path), "chaser", sample_context())
    results = check_templates(tmp_path)
    assert results["chaser"] is not None and all(v is None for k, v in results.items() if k != "chaser")


def test_cli_check(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["templates", "check"], env={"MAILTICKETS_TEMPLATES_DIR": str(tmp_path)})
    assert ok.exit_code == 0, ok.output
    assert "ok   acknowledgement" in ok.output
    (tmp_path / "closed.html").write_text("{% if %}")
    bad = runner.invoke(main, ["templates", "check"], env={"MAILTICKETS_TEMPLATES_DIR": str(tmp_path)})
    assert bad.exit_code == 1
    assert "FAIL closed" in bad.output


class _FakedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_an_edited_template_is_used_once_its_file_is_looked_at_again_faked_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mailtickets.notify import templates

    clock = _FakedClock()
    monkeypatch.setattr(templates, "time", clock)
    subject = tmp_path / "acknowledgement.subject.txt"
    subject.write_text("Received: {{ ticket.reference }}")
    env = make_environment(tmp_path)
    assert render(env, "acknowledgement", sample_context()).subject == "Received: TCK-12"
    subject.write_text("Got it: {{ ticket.reference }}")
    later = subject.stat().st_mtime + 5
    os.utime(subject, (later, later))  # a new mtime, whatever the file system's granularity
    clock.now += templates.RECHECK_SECONDS / 2
    assert render(env, "acknowledgement", sample_context()).subject == "Received: TCK-12"  # not stat'ed yet
    clock.now += templates.RECHECK_SECONDS
    assert render(env, "acknowledgement", sample_context()).subject == "Got it: TCK-12"
