"""The systemd units in deploy/systemd pass systemd-analyze verify and start mailtickets the documented way."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
UNITS = ROOT / "deploy" / "systemd"
INSTALLED = "/opt/mailtickets/bin/mailtickets"


@pytest.mark.parametrize("unit", ["mailtickets.service", "mailtickets-purge.service", "mailtickets-purge.timer"])
def test_units_verify(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("needs systemd-analyze")
    executable = Path(sys.executable).with_name("mailtickets")
    if not executable.exists():
        pytest.skip("needs the mailtickets script beside this Python")
    for source in UNITS.iterdir():  # the timer names its service: verify them side by side
        (tmp_path / source.name).write_text(source.read_text().replace(INSTALLED, str(executable)))
    done = subprocess.run([analyze, "verify", str(tmp_path / unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in done.stderr.splitlines() if unit.split(".")[0] in line]
    assert done.returncode == 0 and not problems, done.stderr


def test_the_service_checks_first_and_keeps_a_config_error_down() -> None:
    unit = (UNITS / "mailtickets.service").read_text()
    assert f"ExecStartPre={INSTALLED} check --offline" in unit and f"ExecStart={INSTALLED} run" in unit
    assert "RestartPreventExitStatus=78" in unit  # EX_CONFIG: a restart would not fix it
    for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "StateDirectory=mailtickets"):
        assert hardening in unit
