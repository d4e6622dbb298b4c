"""Writing to disk so that nothing is half-written, and one clear line when the disk refuses: the
primitives the run directory, checkpoints and the task store share.

A refused write (a full or read-only disk, permission denied, an I/O error) is reported by each
library in its own way: an OSError, SQLite's error names, safetensors' "os error 28", torch.save's
bare "unexpected pos". `resource_problem` reads them all; when none names the cause, a 1 MiB probe
write asks the disk.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
from pathlib import Path


class WriteRefused(RuntimeError):
    """The disk refused a write (full, read-only, permission denied, I/O error): the message names
    the path and the cause. Whatever the write was part of is not committed."""


# -- one writer ---------------------------------------------------------------------------------


def unused_name(path: Path) -> Path:
    """`path`, or `path-2`, `path-3`...: the first that does not exist."""
    number, found = 1, path
    while found.exists():
        number += 1
        found = path.with_name(f"{path.name}-{number}")
    return found


# -- the manifest --------------------------------------------------------------------------------


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` durably: a crash leaves the old file or the new one, never a mix,
    and a failed write leaves no temporary file behind."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(error, OSError) and error.errno is not None:  # name the file, not its temporary
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    sync_directory(path.parent)


def sync_directory(path: Path) -> None:
    """fsync a directory, so the renames in it survive a power cut."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


_OS_ERROR = re.compile(r"os error (\d+)")
SQLITE_REFUSALS = ("SQLITE_FULL", "SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_PERM")
"""SQLite's names (and their prefixes, SQLITE_IOERR_WRITE...) for a disk that refuses a write."""


def resource_problem(error: BaseException, where: Path) -> str | None:
    """If `error` (or what caused it) is the disk refusing a write under `where` (full, read-only,
    permission, I/O error), one line naming the path and the cause; None for anything else, a bug.

    Libraries report these differently: Python raises OSError; SQLite its own codes; safetensors
    a message with "os error N"; torch.save only "unexpected pos" or "file write failed". When
    nothing names the cause, a probe write under `where` asks the filesystem directly."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno is not None:  # a read or a write: it says which file
            return f"{cause.filename or where}: {cause.strerror or os.strerror(cause.errno)}"
        if isinstance(cause, sqlite3.OperationalError):
            name = getattr(cause, "sqlite_errorname", "")
            if name.startswith(SQLITE_REFUSALS):
                return f"cannot write {where}: {cause}"
        match = _OS_ERROR.search(str(cause))
        if match:
            return f"cannot write {where}: {os.strerror(int(match.group(1)))}"
        cause = cause.__cause__ or cause.__context__
    probe = where if where.is_dir() else where.parent
    return _probe(probe)


def _probe(directory: Path) -> str | None:
    path = directory / f".probe-{os.getpid()}"
    try:
        with open(path, "wb") as handle:
            handle.write(b"\0" * (1 << 20))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        return f"cannot write {directory}: {error.strerror or os.strerror(error.errno or errno.EIO)}"
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
    return None


# -- fault injection, for the tests -------------------------------------------------------------
