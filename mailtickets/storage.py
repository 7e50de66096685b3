"""A content-addressed file store under the data dir: attachments and the raw bytes of held mail.

Files are named by their SHA-256, written to a temporary name and renamed, so a crash never leaves a
half-written file under a real name, and the same bytes are stored once however often they arrive.
The file and then its folder are synced before a write returns (and a new folder's parent): a name is
durable only once its folder is, and the mail that points at it is acknowledged after that.
A file written for a transaction that then rolls back is harmless: nothing points at it.
Mail is private: files are created 0600 and folders 0700, whatever the umask.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from mailtickets.parse.message import StoredPayload

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dirs(path: Path) -> list[Path]:
    """Create `path` and any missing parents as 0700 (existing folders are left as they are); returns
    the folders it created, outermost first."""
    missing = []
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
        os.chmod(folder, PRIVATE_DIR_MODE)  # mkdir's mode is reduced by the umask
    return list(reversed(missing))


def sync_directory(path: Path) -> None:
    """Make the folder's entries durable: a file's own fsync does not cover its name (POSIX). A file
    system that cannot sync a folder (EINVAL: some network ones) is left to do what it does."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


def _sync_names(target: Path, created: list[Path]) -> None:
    """After `target` was renamed into place: its folder, and the parent of each folder created for it."""
    for folder in created:
        sync_directory(folder.parent)
    sync_directory(target.parent)


def create_private_file(path: Path) -> None:
    """Create an empty 0600 file if none exists (SQLite gives its -wal and -shm files the same mode)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE))
    except FileExistsError:
        return
    os.chmod(path, PRIVATE_FILE_MODE)


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.put_with_digest(data, digest)
        return digest

    def put_with_digest(self, data: bytes, digest: str) -> None:
        target = self.path_for(digest)
        if target.exists():
            return
        created = make_private_dirs(target.parent)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")  # 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
            _sync_names(target, created)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredPayload:
        """Bytes that arrive a chunk at a time (a big attachment as it is decoded), hashed as they are
        written: the whole never has to be in memory. Named once the digest is known; stored once."""
        created = make_private_dirs(self.root)
        digest, size = hashlib.sha256(), 0
        fd, temporary = tempfile.mkstemp(dir=self.root, prefix=".incoming-")  # 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    digest.update(chunk)
                    handle.write(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            target = self.path_for(digest.hexdigest())
            if target.exists():
                Path(temporary).unlink()
            else:
                created += make_private_dirs(target.parent)
                os.replace(temporary, target)
                _sync_names(target, created)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return StoredPayload(digest.hexdigest(), size)

    def get(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).exists()


class UnwrittenFileStore(FileStore):
    """Names files like FileStore but writes none: for the dry run, which must leave no trace."""

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredPayload:
        digest, size = hashlib.sha256(), 0
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
        return StoredPayload(digest.hexdigest(), size)

    def put_with_digest(self, data: bytes, digest: str) -> None:
        self.path_for(digest)  # the same validation, no write
