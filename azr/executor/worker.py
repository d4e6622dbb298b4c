"""The sandbox worker: a lean fork server that runs each untrusted program in its own child.

The calling process starts one worker per slot, inside bubblewrap when it can, as
`python -S -s -B -c ...` with a scrubbed environment, in a working directory no program can write,
which is not on its sys.path either. A worker is two processes:

- the worker proper talks to the caller (one JSON line in per request on stdin, one out on
  stdout), writes each request to its child, reads the child's result and printed output, kills
  it at the deadline, and cleans up after it. It never runs untrusted code.
- the zygote, forked from the worker right after the standard modules are preloaded and before any
  request is read, creates the children. Children are copies of the zygote, which never holds
  request data, so a program cannot find earlier programs, inputs or outputs in its own memory (a
  child forked from the worker could: freed memory is not cleared).

Where the kernel allows it (`namespaces`), the zygote works in a mount namespace of its own and
gives each child a fresh tmpfs and a pid namespace of its own, and nothing is left to clean up;
elsewhere children are forked and share one private directory that the worker empties after each
request.

Each child confines itself (azr.executor.child) and then waits for its request on a pipe, runs
it, and reports through a pipe of its own. The next child is created and confined while the
caller is busy with the previous result. The worker judges nothing: it reports what it saw (the
child's message, its exit status, whether it confined itself, whether it had to be killed) and
the calling process decides the verdict (`azr.executor.protocol.interpret`). See azr.executor for
the threat model.

This module imports only the standard library and this package's stdlib-only modules; the worker
runs with `-S`.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import signal
import socket
import stat
import sys
import time
from typing import Any

from azr.executor import child, namespaces, seccomp

PRELOAD = (
    "abc", "array", "bisect", "cmath", "collections", "collections.abc", "copy", "dataclasses",
    "datetime", "decimal", "enum", "fractions", "functools", "hashlib", "heapq", "importlib", "itertools", "json",
    "math", "numbers", "operator", "re", "statistics", "string", "textwrap", "typing", "unicodedata",
)  # fmt: skip
"""Imported once, so children import them for free (and, where the interpreter's files cannot be
read after the uid drop, at all)."""

PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
_ZYGOTE_TIMEOUT = 10.0


def main() -> None:
    config = json.loads(sys.argv[1])
    sys.path[len(sys.path) :] = config["python_paths"]  # importable by programs; nothing is preloaded from them
    # Not dumpable: a child with the worker's uid (unprivileged bubblewrap) cannot open
    # /proc/<worker>/mem or ptrace it.
    seccomp.prctl(PR_SET_DUMPABLE, 0)
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    child.prepare()
    gc.collect()
    gc.freeze()  # fewer copy-on-write faults in the children
    unsafe = _writable_import_path(config)
    zygote, fresh, why_not = _start_zygote(config)
    _prepare(config, zygote, fresh)
    canary = serve({"program": "def f(x):\n    return x", "input": "[1]"}, config, zygote, fresh)
    ready = (
        canary["returncode"] == 0
        and _frame_status(canary["frame"]) == "ok"
        and canary["confined"]
        and not canary["retiring"]
    )
    error = "" if ready else f"the sandbox's self-test failed: {canary}"
    if unsafe:
        ready, error = False, f"{unsafe} is on the sandbox's import path and writable by its programs"
    _send(
        {
            "ready": ready,
            "error": error,
            "uid": os.getuid(),
            "child_uid": _child_uid(config),
            "seccomp": config["seccomp"],
            "fresh_namespaces": fresh,
            "why_not_fresh": why_not,
            "clock": time.time(),
            "python": sys.version.split()[0],
        }
    )
    if not ready:
        return
    for line in sys.stdin.buffer:
        reply = serve(json.loads(line), config, zygote, fresh)
        _send(reply)
        if reply["retiring"]:
            return  # the caller replaces this worker, and with it the whole sandbox


def _send(message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(1, data) :]


def _frame_status(frame: str | None) -> Any:
    try:
        return json.loads(frame or "").get("status")
    except (ValueError, AttributeError, RecursionError):
        return None


def _writable_import_path(config: dict) -> str:
    """A directory on sys.path (or above one) that the children's uid could write, or ''.

    A planted module there would run in the next worker started from this interpreter. Read-only
    mounts (everything under bubblewrap) are safe whatever their modes say; a sticky directory
    (/tmp) lets no one replace another user's entries."""
    uid = _child_uid(config)
    for entry in sys.path:
        path = os.path.realpath(entry or ".")
        first = True
        while True:
            try:
                st = os.stat(path)
                read_only = os.statvfs(path).f_flag & os.ST_RDONLY
            except OSError:
                st, read_only = None, True
            if st is not None and not read_only and stat.S_ISDIR(st.st_mode):
                writable = (
                    (st.st_uid == uid and st.st_mode & stat.S_IWUSR)
                    or (st.st_gid == uid and st.st_mode & stat.S_IWGRP)
                    or st.st_mode & stat.S_IWOTH
                )
                if writable and (first or not st.st_mode & stat.S_ISVTX):
                    return path
            if path == "/":
                break
            path, first = os.path.dirname(path), False
    return ""


# ---------------------------------------------------------------------------------------------
# the zygote: forks children, holds no request data


def _start_zygote(config: dict) -> tuple[socket.socket, bool, str]:
    """The zygote's channel, whether it clones children into fresh namespaces, and why not."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if os.fork() == 0:
        ours.close()
        try:
            _zygote(theirs, config)
        finally:
            os._exit(0)
    theirs.close()
    ours.settimeout(_ZYGOTE_TIMEOUT)
    mode = ours.recv(512).decode("utf-8", "replace")
    return ours, mode == "fresh", mode.removeprefix("plain:") if mode != "fresh" else ""


def _zygote(channel: socket.socket, config: dict) -> None:
    """First say whether children can have fresh namespaces. Then, `prepare`: create a child with
    fresh pipes (it confines itself and waits for its request); `go`: hand the worker the pipes'
    other ends and the child's pid, wait for the child, and report its exit status."""
    seccomp.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # no zygote without its worker
    own = os.pidfd_open(os.getpid())  # children watch it: they must not outlive the zygote
    fresh, why_not = _fresh_namespaces_work(config)
    channel.send(b"fresh" if fresh else f"plain:{why_not}".encode()[:500])
    prepared = None
    while command := channel.recv(16):
        if command == b"prepare" or prepared is None:
            prepared = _create_child(channel, config, own, fresh)
        if command == b"go":
            pid, fds = prepared
            prepared = None
            socket.send_fds(channel, [str(pid).encode()], fds)
            for fd in fds:
                os.close(fd)
            _, status = os.waitpid(pid, 0)
            channel.send(str(os.waitstatus_to_exitcode(status)).encode())


def _fresh_namespaces_work(config: dict) -> tuple[bool, str]:
    """Try once: the zygote's own mount namespace and private tmpfs, then a child cloned into a
    new pid namespace that finds itself pid 1."""
    if not namespaces.known_machine():
        return False, "an architecture without known system call numbers"
    try:
        namespaces.isolate_zygote(_child_uid(config), host_view=config["host_view"])
        pid = namespaces.clone(namespaces.CLONE_NEWPID)
    except OSError as error:
        return False, str(error)
    if pid == 0:
        os._exit(0 if os.getpid() == 1 else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0, "a cloned child was not pid 1 of its namespace"


def _child_uid(config: dict) -> int:
    return config["drop_to_uid"] if config["drop_to_uid"] is not None else os.getuid()


def _create_child(channel: socket.socket, config: dict, zygote_pidfd: int, fresh: bool) -> tuple[int, list[int]]:
    """A new child, and the worker's ends of its request, result and output pipes."""
    request_r, request_w = os.pipe()
    result_r, result_w = os.pipe()
    output_r, output_w = os.pipe()
    if fresh:
        namespaces.renew_private_directory(_child_uid(config))
    pid = namespaces.clone(namespaces.CLONE_NEWPID) if fresh else os.fork()
    if pid == 0:
        channel.close()
        for fd in (request_w, result_r, output_r):
            os.close(fd)
        child.main(config, zygote_pidfd, request=request_r, result=result_w, output=output_w, fresh=fresh)
    for fd in (request_r, result_w, output_w):
        os.close(fd)
    return pid, [request_w, result_r, output_r]


# ---------------------------------------------------------------------------------------------
# the worker's side of one request


_untouched: list[tuple] = []
"""Stat signatures of the scratch directories as the prepared child found them."""


def _prepare(config: dict, zygote: socket.socket, fresh: bool) -> None:
    """Have the zygote create the next child; without fresh namespaces, make its private directory
    first (unless the last child left it untouched)."""
    private = os.path.join(config["scratch"], "work")
    if not fresh and not _untouched:
        os.mkdir(private, 0o700)
        if config["drop_to_uid"] is not None:
            os.chown(private, config["drop_to_uid"], config["drop_to_uid"])
        _untouched[:] = _signatures([*config["wipe"], private])
    zygote.send(b"prepare")


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


def serve(request: dict, config: dict, zygote: socket.socket, fresh: bool) -> dict:
    """Run one request in the prepared child; return what was seen, for the caller to interpret."""
    zygote.send(b"go")
    zygote.settimeout(_ZYGOTE_TIMEOUT)
    message, fds, _, _ = socket.recv_fds(zygote, 64, 3)
    pid = int(message)
    request_w, result_r, output_r = fds
    report = _watch(pid, json.dumps(request).encode(), request_w, result_r, output_r, config)
    status = zygote.recv(64)
    if not status:
        sys.exit("the zygote is gone")
    report["returncode"] = int(status)
    report["retiring"] = not _clean(config, fresh)
    if not report["retiring"]:
        _prepare(config, zygote, fresh)
    return report


def _watch(pid: int, request: bytes, request_w: int, result_r: int, output_r: int, config: dict) -> dict:
    """Feed the child its request, collect its result and output until it exits, kill it at the
    deadline or when it oversteps a limit. Closes the three pipes."""
    started = time.monotonic()
    deadline = started + config["timeout"]
    # json.dumps escapes a character outside the BMP as 12 bytes: size for the worst case.
    max_frame = 12 * (config["max_output_chars"] + child.MAX_ERROR_CHARS) + 4096
    pidfd = os.pidfd_open(pid)
    os.set_blocking(request_w, False)
    poller = select.poll()
    poller.register(request_w, select.POLLOUT)
    for fd in (result_r, output_r, pidfd):
        poller.register(fd, select.POLLIN)
    frame, captured = bytearray(), bytearray()
    open_pipes = {result_r, output_r}
    unclosed = {request_w, result_r, output_r, pidfd}
    exited, killed = False, None
    try:
        while open_pipes or not exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if not exited:
                    killed = "timeout"
                break
            for fd, _ in poller.poll(remaining * 1000):
                if fd == pidfd:
                    exited = True
                    poller.unregister(pidfd)
                elif fd == request_w:
                    try:
                        request = request[os.write(request_w, request) :]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # the child is gone or closed it: nothing more to send
                        request = b""
                    if not request:
                        poller.unregister(request_w)
                        os.close(request_w)
                        unclosed.discard(request_w)
                else:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        open_pipes.discard(fd)
                        poller.unregister(fd)
                    elif fd == result_r:
                        frame += chunk
                        if len(frame) > max_frame:
                            killed = "frame"
                    else:
                        captured += chunk
                        if len(captured) > config["max_stdout_bytes"]:
                            killed = "stdout"
            if killed:
                break
        if killed:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        seconds = time.monotonic() - started
    finally:
        for fd in unclosed:
            os.close(fd)
    # A confined child's first byte says so: what follows is the program's to write.
    confined = frame[:1] == child.CONFINED
    message = frame[1:] if confined else frame
    return {
        "frame": None if killed else message.decode("utf-8", "replace"),
        "confined": confined,
        "killed": killed,
        "stdout": captured[: config["max_stdout_bytes"]].decode("utf-8", "replace"),
        "seconds": round(seconds, 6),
    }


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


if __name__ == "__main__":
    main()
