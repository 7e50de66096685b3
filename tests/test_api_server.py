"""The API served for real by uvicorn: as a `mailtickets run` component that stops when told to."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import Store

from mailtickets.api.server import parse_bind, run_api


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_parse_bind() -> None:
    assert parse_bind("127.0.0.1:8000") == ("127.0.0.1", 8000)
    assert parse_bind("[::1]:9000") == ("::1", 9000)
    with pytest.raises(ValueError):
        parse_bind("localhost")


async def test_run_api_serves_until_stopped(sqlite_store: Store) -> None:
    port = _free_port()
    sqlite_store.settings.http_bind = f"127.0.0.1:{port}"
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_api(sqlite_store.settings, sqlite_store.sessions, sqlite_store.clock, sqlite_store.pipeline(), stop)
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(100):
            try:
                health = await client.get("/healthz")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.02)
        else:
            pytest.fail("the API never started listening")
        unauthorised = await client.get("/api/v1/contacts")
    assert health.json() == {"status": "ok"} and unauthorised.status_code == 401
    stop.set()
    await asyncio.wait_for(task, timeout=10)


def _start_cli_api(tmp_path: Path, database: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`mailtickets api` as a real process, with nothing but the environment to configure it."""
    port = _free_port()
    env = {
        **os.environ,
        "MAILTICKETS_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "MAILTICKETS_HTTP_BIND": f"127.0.0.1:{port}",
        "MAILTICKETS_DATA_DIR": str(tmp_path / "data"),
    }
    command = [sys.executable, "-c", "from mailtickets.cli import main; main()", "api"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


def _wait_until_serving(process: subprocess.Popen[bytes], base_url: str) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            return httpx.get(f"{base_url}/healthz")
        except httpx.ConnectError:
            time.sleep(0.05)
    process.kill()
    pytest.fail(f"`mailtickets api` never served: {process.communicate()[0].decode()}")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_api_serves_on_http_bind_and_stops_cleanly(
    stop_signal: signal.Signals, tmp_path: Path, sqlite_template: Path
) -> None:
    shutil.copy(sqlite_template, tmp_path / "api.db")
    process, base_url = _start_cli_api(tmp_path, tmp_path / "api.db")
    health = _wait_until_serving(process, base_url)
    unauthorised = httpx.get(f"{base_url}/api/v1/contacts")
    process.send_signal(stop_signal)
    output = process.communicate(timeout=30)[0].decode()
    assert health.json() == {"status": "ok"} and unauthorised.status_code == 401
    assert process.returncode == 0, output


def test_cli_api_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    process, _ = _start_cli_api(tmp_path, tmp_path / "empty.db")
    output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 78 and "mailtickets db upgrade" in output
