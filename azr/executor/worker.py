"""The sandbox worker: a lean fork server that runs each untrusted program in its own child.

The calling process starts one worker per slot, inside bubblewrap when it can, as
`python -S -s -B -c ...` with a scrubbed environment, in a working directory no program can write,
which is not on its sys.path either. A worker is two processes:

- the worker proper (this module) talks to the caller (one JSON line in per request on stdin, one
  out on stdout), writes each request to its child, reads the child's result and printed output,
  kills it at the deadline, and cleans up after it (azr.executor.scratch, where children share a
  directory). It never runs untrusted code.
- the zygote (azr.executor.zygote), forked from the worker right after the standard modules are
  preloaded and before any request is read, creates the children, and never holds request data.

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

from azr.executor import child, seccomp
from azr.executor.scratch import _clean
from azr.executor.zygote import _ZYGOTE_TIMEOUT, _child_uid, _prepare, _start_zygote

PRELOAD = (
    "abc", "array", "bisect", "cmath", "collections", "collections.abc", "copy", "dataclasses",
    "datetime", "decimal", "enum", "fractions", "functools", "hashlib", "heapq", "importlib", "itertools", "json",
    "math", "numbers", "operator", "re", "statistics", "string", "textwrap", "typing", "unicodedata",
)  # fmt: skip
"""Imported once, so children import them for free (and, where the interpreter's files cannot be
read after the uid drop, at all)."""

PR_SET_DUMPABLE = 4


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
# the worker's side of one request


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


if __name__ == "__main__":
    main()
