"""mailtickets.toml.example documents every setting, and uncommented it is a valid configuration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mailtickets.settings import MailboxSettings, Settings, load_settings

EXAMPLE = Path(__file__).parent.parent / "mailtickets.toml.example"
SKIPPED_WHEN_UNCOMMENTED = {"mailboxes"}  # `mailboxes = []` and the [[mailboxes]] tables cannot both be set


def _documented() -> set[str]:
    return set(re.findall(r"^# (\w+) = ", EXAMPLE.read_text(), re.MULTILINE))


def test_every_setting_is_documented() -> None:
    missing = set(Settings.model_fields) - _documented()
    assert not missing, f"add to mailtickets.toml.example: {sorted(missing)}"


def test_every_mailbox_setting_is_documented() -> None:
    missing = set(MailboxSettings.model_fields) - _documented()
    assert not missing, f"add to the [[mailboxes]] example: {sorted(missing)}"


def test_uncommented_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"MAILTICKETS_{name.upper()}", raising=False)
    lines = []
    for line in EXAMPLE.read_text().splitlines():
        found = re.match(r"^# (\[\[mailboxes\]\]|(\w+) = .*)$", line)
        if found and found.group(2) not in SKIPPED_WHEN_UNCOMMENTED:
            lines.append(found.group(1))
    config = tmp_path / "mailtickets.toml"
    config.write_text("\n".join(lines) + "\n")
    settings = load_settings(config)
    assert settings.mailboxes[0].name == "support"
    assert settings.lmtp_bind == "127.0.0.1:2424" and settings.log_format == "text"


def test_example_says_what_an_empty_http_bind_does() -> None:
    text = EXAMPLE.read_text()
    block = text[: text.index("# http_bind = ")].rsplit("# ---", 1)[1]
    assert '""' in block and "no API" in block
