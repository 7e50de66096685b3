"""docker-compose.yml, checked without a Docker engine: the Compose specification (check-jsonschema),
every depends_on names a service, and every file it mounts or builds from exists in the repository."""

from __future__ import annotations

import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parent.parent
COMPOSE = ROOT / "docker-compose.yml"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_validates_against_the_compose_specification() -> None:
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).with_name("check-jsonschema"))
    if not Path(tool).exists():
        pytest.skip("check-jsonschema is not installed (pip install '.[test]')")
    done = subprocess.run(
        [tool, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_depends_on_names_services() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on unknown service {needed}"


def test_every_long_running_service_has_a_health_check() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        if service.get("restart") == "no":  # one-shot: those after it wait for it to complete, not for health
            waiting = [s for s in services.values() if s.get("depends_on", {}).get(name)]
            assert waiting and all(
                s["depends_on"][name]["condition"] == "service_completed_successfully" for s in waiting
            ), name
        else:
            assert "healthcheck" in service, name


def test_the_service_is_healthy_only_when_ready() -> None:
    """/readyz, not /healthz: /healthz stays 200 while IMAP is down or the data folder is unwritable."""
    check = " ".join(_compose()["services"]["mailtickets"]["healthcheck"]["test"])
    assert "/readyz" in check and "/healthz" not in check and "urlopen" in check  # urlopen raises on 503


def test_the_image_creates_the_data_folder_owned_by_the_service_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """A named volume starts as a copy of the image's folder, owner included: it must exist and be ours."""
    from mailtickets.settings import load_settings

    monkeypatch.delenv("MAILTICKETS_DATABASE_URL", raising=False)
    data_dir = str(load_settings(ROOT / "deploy" / "mailtickets.toml").data_dir)
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    run = " ".join(line.strip(" \\") for line in dockerfile.split("RUN ", 1)[1].split("\nUSER")[0].splitlines())
    assert f"mkdir -p {data_dir}" in run
    chown = re.search(r"chown (-R )?mailtickets(:mailtickets)? (\S+)", run)
    assert chown is not None and chown.group(1) and data_dir.startswith(chown.group(3))
    assert re.search(r"^USER mailtickets$", dockerfile, re.MULTILINE)
    mounts = _compose()["services"]["mailtickets"]["volumes"]
    assert f"mailtickets-data:{data_dir}" in mounts


def _init_commands() -> list[list[str]]:
    """Each `mailtickets …` invocation in the init service's shell command, as argument lists."""
    script = _compose()["services"]["mailtickets-init"]["command"][-1]
    pieces = re.split(r"&&|\|\||[{};|]|>/dev/null|2>&1", script)
    return [words for piece in pieces if (words := shlex.split(piece)) and words[0] == "mailtickets"]


def test_the_init_step_runs_commands_and_options_that_exist() -> None:
    import click

    from mailtickets.cli import main

    used = _init_commands()
    assert [words[1:3] for words in used] == [
        ["db", "upgrade"], ["clients", "list"], ["clients", "add"], ["apikey", "revoke"], ["apikey", "create"]
    ]  # fmt: skip
    for words in used:
        with click.Context(main) as ctx:
            group = main.get_command(ctx, words[1])
            assert isinstance(group, click.Group), words
            command = group.get_command(ctx, words[2])
            assert command is not None, words
            options = {opt for param in command.params for opt in param.opts}
            assert {w for w in words[3:] if w.startswith("--")} <= options, words


def test_the_init_step_registers_the_domain_the_readme_and_header_suggest() -> None:
    add = next(words for words in _init_commands() if words[1:3] == ["clients", "add"])
    domain = add[add.index("--domain") + 1]
    header = COMPOSE.read_text().split("\nname:")[0]
    assert f"@{domain}" in header and "docker compose logs mailtickets-init" in header
    assert f"@{domain}" in (ROOT / "README.md").read_text()


def test_referenced_files_exist() -> None:
    compose = _compose()
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"


def test_the_mounted_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from mailtickets.settings import load_settings

    monkeypatch.delenv("MAILTICKETS_DATABASE_URL", raising=False)
    settings = load_settings(ROOT / "deploy" / "mailtickets.toml")
    assert settings.mailboxes[0].host == "dovecot" and settings.smtp_url == "smtp://mailpit:1025"


def test_dockerfile_copies_what_exists() -> None:
    for line in (ROOT / "deploy" / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def test_dockerfile_copies_the_targets_of_symlinks_it_copies() -> None:
    """COPY keeps a symlink as a link (mailtickets/templates -> ../templates): its target must be copied too."""
    copied = {
        source.rstrip("/")
        for line in (ROOT / "deploy" / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
    }
    for source in copied:
        for link in (p for p in (ROOT / source).rglob("*") if p.is_symlink()):
            target = link.resolve().relative_to(ROOT.resolve())
            assert any(target.is_relative_to(c) for c in copied), f"{link.relative_to(ROOT)} -> {target} not copied"


def _host_path(service: str, container_path: str) -> Path:
    """The repository file that `service` sees at `container_path` through its bind mounts."""
    for volume in _compose()["services"][service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith(".") and (container_path == target or container_path.startswith(target + "/")):
            return ROOT / source / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{service} does not mount {container_path}")


def test_mailtickets_trusts_the_certificate_dovecot_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    from mailtickets.ingest.imap_session import tls_context
    from mailtickets.settings import load_settings

    monkeypatch.delenv("MAILTICKETS_DATABASE_URL", raising=False)
    mailbox = load_settings(ROOT / "deploy" / "mailtickets.toml").mailboxes[0]
    assert mailbox.security == "starttls" and mailbox.tls_ca_file is not None
    dovecot_conf = (ROOT / "deploy" / "dovecot" / "dovecot.conf").read_text()
    cert, key = (re.search(rf"^{name} = <(\S+)$", dovecot_conf, re.MULTILINE) for name in ("ssl_cert", "ssl_key"))
    assert cert is not None and key is not None
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(_host_path("dovecot", cert.group(1)), _host_path("dovecot", key.group(1)))
    trusted = mailbox.model_copy(update={"tls_ca_file": _host_path("mailtickets", str(mailbox.tls_ca_file))})
    # A real TLS handshake on loopback, checking the name mailtickets connects to ("dovecot").
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        accepted = threading.Thread(target=_accept_tls, args=(listener, server_context))
        accepted.start()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            tls_context(trusted).wrap_socket(raw, server_hostname=mailbox.host) as client,
        ):
            assert client.version() is not None
        accepted.join(5)


def _accept_tls(listener: socket.socket, context: ssl.SSLContext) -> None:
    connection, _ = listener.accept()
    with context.wrap_socket(connection, server_side=True) as tls:
        tls.recv(1)


def test_the_image_runs_commands_that_exist() -> None:
    from mailtickets.cli import LAZY_COMMANDS

    cmd = next(line for line in (ROOT / "deploy" / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    used = re.findall(r"\bmailtickets (\w+)", cmd)
    assert used == ["db", "run"] and all(name in LAZY_COMMANDS for name in used)
