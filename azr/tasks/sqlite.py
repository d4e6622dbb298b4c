"""SQLite as the task store uses it: transactions whose refused writes are named, and read-only
connections that work on a read-only disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from azr.disk import SQLITE_REFUSALS, WriteRefused


class Transaction:
    """BEGIN ... COMMIT, or ROLLBACK on an exception. A disk that refuses the write (full,
    read-only, an I/O error) is a WriteRefused naming the file: nothing of the transaction is kept."""

    def __init__(self, db: sqlite3.Connection, begin: str, path: Path) -> None:
        self.db = db
        self.begin = begin
        self.path = path

    def __enter__(self) -> None:
        try:
            self.db.execute(self.begin)
        except sqlite3.OperationalError as error:
            raise _refused(error, self.path) from error

    def __exit__(self, kind: type | None, error: BaseException | None, _: object) -> None:
        try:
            self.db.execute("COMMIT" if kind is None else "ROLLBACK")
        except sqlite3.OperationalError as failure:
            if kind is None:
                raise _refused(failure, self.path) from failure
        if isinstance(error, sqlite3.OperationalError) and (refused := _refused(error, self.path)) is not error:
            raise refused from error


def _refused(error: sqlite3.OperationalError, path: Path) -> Exception:
    if getattr(error, "sqlite_errorname", "").startswith((*SQLITE_REFUSALS, "SQLITE_BUSY")):
        return WriteRefused(f"cannot write {path}: {error}")
    return error


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection. `mode=ro` needs to create the WAL index beside the file; on a
    read-only disk that fails, and a store closed cleanly (no -wal file) is opened as immutable."""
    if not path.is_file():
        raise sqlite3.DatabaseError("no such file")
    uri = path.resolve().as_uri()
    try:
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, timeout=30)
        db.execute("SELECT 1 FROM meta LIMIT 1")
        return db
    except sqlite3.OperationalError as error:
        wal = path.with_name(path.name + "-wal")
        if getattr(error, "sqlite_errorname", "") != "SQLITE_CANTOPEN" or (wal.exists() and wal.stat().st_size):
            raise
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)
