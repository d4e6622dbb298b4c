"""Cleaning up after a child where there is no fresh tmpfs: the private directory children share.

Without fresh namespaces (azr.executor.zygote), children are forked and share one private
directory; after each request the worker (azr.executor.worker) checks whether the child wrote
there and, if it did, empties it for the next child. The caller empties a stopped worker's
directory with `empty_directories` too (azr.executor.handle, isolation `none`).

This module imports only the standard library: the sandbox worker imports it.
"""

from __future__ import annotations

import os
import stat

_untouched: list[tuple] = []
"""Stat signatures of the scratch directories as the prepared child found them."""


def _signatures(paths: list[str]) -> list[tuple]:
    # Creating, removing or renaming an entry changes a directory's mtime, and chmod, chown or
    # utime change its ctime, which no unprivileged process can set back.
    return [(s.st_mtime_ns, s.st_ctime_ns, s.st_nlink, s.st_mode, s.st_uid) for s in map(os.lstat, paths)]


def _clean(config: dict, fresh: bool) -> bool:
    """Leave the scratch space as the next child must find it; False if that failed. A fresh
    child's tmpfs went with its mount namespace: nothing is left."""
    if fresh:
        return True
    private = os.path.join(config["scratch"], "work")
    try:
        if _untouched and _signatures([*config["wipe"], private]) == _untouched:
            return True  # nothing was written: the directory is reused as it is
    except OSError:
        pass
    _untouched.clear()
    return empty_directories(config["wipe"])


def empty_directories(roots: list[str]) -> bool:
    """Empty each of `roots`, whatever the child left there; False if that failed.

    Works through directory descriptors, never follows a symlink, and holds two descriptors at a
    time whatever the depth, so neither long paths nor deep trees defeat it. Nothing races it:
    the child is dead and nothing else can write here.
    """
    try:
        for root in roots:
            if os.path.lexists(root):
                _empty(os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW))
    except (OSError, RecursionError, MemoryError):
        return False
    return True


def _empty(top: int) -> None:
    """Remove everything inside the directory open as `top` (closed on return)."""
    top_stat = os.fstat(top)
    os.fchmod(top, stat.S_IMODE(top_stat.st_mode) | 0o700)
    current, depth = top, 0
    try:
        while True:
            subdirectory = None
            with os.scandir(current) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        subdirectory = entry.name
                        break
                    os.unlink(entry.name, dir_fd=current)
            if subdirectory is not None:
                os.chmod(subdirectory, 0o700, dir_fd=current)  # a real directory: checked above
                child = os.open(subdirectory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=current)
                os.close(current)
                current, depth = child, depth + 1
            elif depth == 0:
                return
            else:  # `current` is empty: climb, and remove it from its parent, found by inode
                inode = os.fstat(current).st_ino
                parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=current)
                os.close(current)
                current, depth = parent, depth - 1
                with os.scandir(current) as entries:
                    name = next(e.name for e in entries if e.inode() == inode)
                os.rmdir(name, dir_fd=current)
    finally:
        os.close(current)
