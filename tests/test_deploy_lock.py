"""The committed locks (requirements/*.lock) stay in step with pyproject.toml: every declared dependency is
pinned, with hashes, at a version its bound allows, and the README and .ci/run install from them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lock: Path) -> dict[str, Version]:
    return {_normal(name): Version(version) for name, version in PIN.findall(lock.read_text())}


def _declared(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + (project["optional-dependencies"][extra] if extra else [])
    return [Requirement(line) for line in listed]


@pytest.mark.parametrize(("lock", "extra"), [("runtime.lock", None), ("test.lock", "test")])
def test_every_declared_dependency_is_pinned_within_its_bound(lock: str, extra: str | None) -> None:
    pins = _pins(ROOT / "requirements" / lock)
    for requirement in _declared(extra):
        name = _normal(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements/{lock}: run scripts/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements/{lock} pins {name}=={pins[name]}, outside {requirement}: run scripts/lock.sh"
        )


@pytest.mark.parametrize("lock", ["runtime.lock", "test.lock"])
def test_every_pin_carries_a_hash(lock: str) -> None:
    entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements" / lock).read_text().strip())
    unhashed = [entry.split()[0] for entry in entries if "==" in entry and "--hash=sha256:" not in entry]
    assert not unhashed


def test_readme_and_ci_install_from_the_locks() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install --require-hashes -r requirements/runtime.lock" in readme
    assert "pip install --require-hashes -r requirements/test.lock" in readme
    assert "--require-hashes -r requirements/test.lock" in ci
