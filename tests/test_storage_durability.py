"""The file store makes a file's name durable, not only its bytes: the folder is synced after the rename."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailtickets.storage import FileStore


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """What os.fsync was called on, by path (the real fsync still runs: a recording wrapper, no fake)."""
    seen: list[Path] = []
    real = os.fsync

    def recording(fd: int) -> None:
        seen.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return seen


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name a file descriptor")
@pytest.mark.parametrize("how", ["put", "put_chunks"])
def test_a_new_file_its_folder_and_the_new_folders_parent_are_synced(
    tmp_path: Path, synced: list[Path], how: str
) -> None:
    root = tmp_path / "files"
    store = FileStore(root)
    digest = store.put(b"attached") if how == "put" else store.put_chunks((b"atta", b"ched")).sha256
    target = store.path_for(digest)
    assert target.read_bytes() == b"attached"
    # The bytes (under the temporary name, renamed since) first, then the folders that now name it.
    assert synced[1:] and all(path.is_dir() for path in synced[1:])
    assert {target.parent, root} <= set(synced[1:])
    assert synced.index(target.parent) > 0


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name a file descriptor")
def test_a_second_file_in_an_existing_folder_syncs_that_folder_only(tmp_path: Path, synced: list[Path]) -> None:
    store = FileStore(tmp_path)
    digest = store.put(b"one")
    first = store.path_for(digest)
    synced.clear()
    same_folder = digest[:2] + "0" * 62  # a name in the folder the first one created
    store.put_with_digest(b"two", same_folder)
    second = store.path_for(same_folder)
    folders = [path for path in synced if path.is_dir()]
    assert folders == [second.parent]
    assert first.exists() and second.exists()
