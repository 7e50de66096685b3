"""`mailtickets db backup PATH`: the database and the data folder together, while the service runs.

The database is copied first (SQLite's online backup API: a consistent snapshot, writers carry on;
PostgreSQL through pg_dump), then the data folder. Files are written before the commit that refers to
them, so every file the snapshot names is already there when the folder is copied; files newer than the
snapshot are harmless orphans.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mailtickets.errors import ConfigurationError
from mailtickets.store_status import parse_database_url, refuse_missing_sqlite_file, sqlite_path

SQLITE_FILE = "mailtickets.db"
POSTGRES_FILE = "mailtickets.pgdump"
DATA_FOLDER = "data"
MANIFEST = "backup.json"


@dataclass(frozen=True)
class BackupReport:
    folder: Path
    database: Path
    files: int


def backup(database_url: str, data_dir: Path, target: Path, now: datetime | None = None) -> BackupReport:
    """Write a new folder `target` holding the database, the data folder and a manifest."""
    if target.exists():
        raise ConfigurationError(f"{target} already exists: give a new folder for the backup")
    url = parse_database_url(database_url)
    refuse_missing_sqlite_file(url)
    target.mkdir(parents=True)
    source = sqlite_path(url)
    if source is not None:
        database = target / SQLITE_FILE
        _sqlite_online_backup(source, database)
    else:
        database = target / POSTGRES_FILE
        _pg_dump(url.set(drivername="postgresql").render_as_string(hide_password=False), database)
    files = _copy_data(data_dir, target / DATA_FOLDER)
    manifest = {"created_at": (now or datetime.now(UTC)).isoformat(), "database": database.name, "files": files}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return BackupReport(target, database, files)


def _sqlite_online_backup(source: Path, destination: Path) -> None:
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as reading, sqlite3.connect(destination) as writing:
        reading.backup(writing)
    writing.close()
    reading.close()


def _pg_dump(url: str, destination: Path) -> None:
    tool = shutil.which("pg_dump")
    if tool is None:
        raise ConfigurationError("backing up PostgreSQL needs pg_dump on PATH (the postgresql-client package)")
    done = subprocess.run([tool, "--format=custom", f"--file={destination}", url], capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigurationError(
            f"pg_dump failed: {done.stderr.strip().splitlines()[-1] if done.stderr else done.returncode}"
        )


def _copy_data(data_dir: Path, destination: Path) -> int:
    if not data_dir.is_dir():
        destination.mkdir()
        return 0
    shutil.copytree(data_dir, destination)
    return sum(1 for path in destination.rglob("*") if path.is_file())
