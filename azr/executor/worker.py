"""The sandbox worker: a lean fork server that runs each untrusted program in its own child.

The calling process starts one worker per slot, inside bubblewrap when it can, as
`python -S -s -B -c ...` with a scrubbed environment. A worker is two processes:

- the worker proper talks to the caller (one JSON line in per request on stdin, one out on
  stdout), writes each request to its child, reads the child's result and printed output, kills
  it at the deadline, and cleans up after it. It never runs untrusted code.
- the zygote, forked from the worker right after the standard modules are preloaded and before any
  request is read, forks the children. Children are copies of the zygote, which never holds request
  data, so a program cannot find earlier programs, inputs or outputs in its own memory (a child
  forked from the worker could: freed memory is not cleared).

Each child confines itself (`_confine`) and then waits for its request on a pipe, runs it, and
reports through a pipe of its own. The next child is forked and confined while the caller is busy
with the previous result. The worker judges nothing: it reports what it saw (the child's message,
its exit status, whether it had to kill it) and the calling process decides the verdict
(`azr.executor.protocol.interpret`). See azr.executor for the threat model.

This module imports only the standard library and this package's `literals`, `protocol` and
`seccomp`; the worker runs with `-S`.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import gc
import json
import os
import resource
import select
import signal
import socket
import stat
import sys
import time
from typing import Any, NoReturn

from azr.executor import literals, seccomp
from azr.executor.protocol import SETUP_FAILED

PRELOAD = (
    "abc", "array", "bisect", "cmath", "collections", "collections.abc", "copy", "dataclasses",
    "datetime", "decimal", "enum", "fractions", "functools", "hashlib", "heapq", "itertools", "json",
    "math", "numbers", "operator", "re", "statistics", "string", "textwrap", "typing", "unicodedata",
)  # fmt: skip
"""Imported once, so children import them for free (and, where the interpreter's files cannot be
read after the uid drop, at all)."""

RESULT_FD, REQUEST_FD = 3, 4
"""The child's descriptors: 0 closed, 1 and 2 the capture pipe, 3 its result, 4 its request
(closed once read)."""

FILE_SIZE_LIMIT = 16 * 2**20
OPEN_FILES_LIMIT = 64
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
_MAX_ERROR_CHARS = 1000
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
    gc.collect()
    gc.freeze()  # fewer copy-on-write faults in the children
    zygote = _start_zygote(config)
    _prepare(config, zygote)
    canary = serve({"program": "def f(x):\n    return x", "input": "[1]"}, config, zygote)
    ready = canary["returncode"] == 0 and _frame_status(canary["frame"]) == "ok" and not canary["retiring"]
    _send(
        {
            "ready": ready,
            "error": "" if ready else f"the sandbox's self-test failed: {canary}",
            "uid": os.getuid(),
            "child_uid": config["drop_to_uid"] if config["drop_to_uid"] is not None else os.getuid(),
            "seccomp": config["seccomp"],
            "python": sys.version.split()[0],
        }
    )
    if not ready:
        return
    for line in sys.stdin.buffer:
        reply = serve(json.loads(line), config, zygote)
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


# ---------------------------------------------------------------------------------------------
# the zygote: forks children, holds no request data


def _start_zygote(config: dict) -> socket.socket:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if os.fork() == 0:
        ours.close()
        try:
            _zygote(theirs, config)
        finally:
            os._exit(0)
    theirs.close()
    return ours


def _zygote(channel: socket.socket, config: dict) -> None:
    """`prepare`: fork a child with fresh pipes (it confines itself and waits for its request).
    `go`: hand the worker the pipes' other ends and the child's pid, wait for the child, and report
    its exit status."""
    seccomp.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # no zygote without its worker
    prepared = None
    while command := channel.recv(16):
        if command == b"prepare" or prepared is None:
            prepared = _fork_child(channel, config)
        if command == b"go":
            pid, fds = prepared
            prepared = None
            socket.send_fds(channel, [str(pid).encode()], fds)
            for fd in fds:
                os.close(fd)
            _, status = os.waitpid(pid, 0)
            channel.send(str(os.waitstatus_to_exitcode(status)).encode())


def _fork_child(channel: socket.socket, config: dict) -> tuple[int, list[int]]:
    """A new child, and the worker's ends of its request, result and output pipes."""
    request_r, request_w = os.pipe()
    result_r, result_w = os.pipe()
    output_r, output_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        channel.close()
        for fd in (request_w, result_r, output_r):
            os.close(fd)
        _child(config, zygote=os.getppid(), request=request_r, result=result_w, output=output_w)
    for fd in (request_r, result_w, output_w):
        os.close(fd)
    return pid, [request_w, result_r, output_r]


# ---------------------------------------------------------------------------------------------
# the worker's side of one request


_untouched: list[tuple] = []
"""Stat signatures of the scratch directories as the prepared child found them."""


def _prepare(config: dict, zygote: socket.socket) -> None:
    """Make the next child's private directory (unless the last child left it untouched) and have
    the zygote fork the child."""
    private = os.path.join(config["scratch"], "work")
    if not _untouched:
        os.mkdir(private, 0o700)
        if config["drop_to_uid"] is not None:
            os.chown(private, config["drop_to_uid"], config["drop_to_uid"])
        _untouched[:] = _signatures([*config["wipe"], private])
    zygote.send(b"prepare")


def _signatures(paths: list[str]) -> list[tuple]:
    # Creating, removing or renaming an entry changes a directory's mtime, and chmod, chown or
    # utime change its ctime, which no unprivileged process can set back.
    return [(s.st_mtime_ns, s.st_ctime_ns, s.st_nlink, s.st_mode, s.st_uid) for s in map(os.lstat, paths)]


def _clean(config: dict) -> bool:
    """Leave the scratch space as the next child must find it; False if that failed."""
    private = os.path.join(config["scratch"], "work")
    try:
        if _untouched and _signatures([*config["wipe"], private]) == _untouched:
            return True  # nothing was written: the directory is reused as it is
    except OSError:
        pass
    _untouched.clear()
    return empty_directories(config["wipe"])


def serve(request: dict, config: dict, zygote: socket.socket) -> dict:
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
    report["retiring"] = not _clean(config)
    if not report["retiring"]:
        _prepare(config, zygote)
    return report


def _watch(pid: int, request: bytes, request_w: int, result_r: int, output_r: int, config: dict) -> dict:
    """Feed the child its request, collect its result and output until it exits, kill it at the
    deadline or when it oversteps a limit. Closes the three pipes."""
    started = time.monotonic()
    deadline = started + config["timeout"]
    # json.dumps escapes a character outside the BMP as 12 bytes: size for the worst case.
    max_frame = 12 * (config["max_output_chars"] + _MAX_ERROR_CHARS) + 4096
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
    return {
        "frame": None if killed else frame.decode("utf-8", "replace"),
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


# ---------------------------------------------------------------------------------------------
# the child: confine, read the request, run, report, exit


def _child(config: dict, zygote: int, request: int, result: int, output: int) -> NoReturn:
    try:
        os.setsid()  # its own session and process group, so one kill reaches all of it
        _confine(config, zygote, request, result, output)
        data = bytearray()
        while chunk := os.read(REQUEST_FD, 1 << 16):
            data += chunk
        os.close(REQUEST_FD)
        message = json.loads(data)
    except BaseException as error:  # never run the program in a half-built sandbox
        for fd in (RESULT_FD, result):
            with contextlib.suppress(BaseException):
                os.write(fd, f"sandbox setup failed: {error!r}".encode()[:2000])
                break
        os._exit(SETUP_FAILED)
    try:
        reply = _run(message, config)
    except BaseException as error:
        reply = {"status": "error", "output": None, "error": f"sandbox: {error!r}"[:_MAX_ERROR_CHARS]}
    for stream in (sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(BaseException):
            stream.flush()
    data = json.dumps(reply).encode()
    try:
        while data:
            data = data[os.write(RESULT_FD, data) :]
    finally:
        os._exit(0)


def _confine(config: dict, zygote: int, request: int, result: int, output: int) -> None:
    """Everything between the fork and the request, most of it irreversible."""
    # Descriptors: only the capture pipe (as stdout and stderr), the result pipe and the request
    # pipe survive; everything inherited from the zygote is closed.
    result, request, output = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (result, request, output))
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.dup2(result, RESULT_FD)
    os.dup2(request, REQUEST_FD)
    os.closerange(REQUEST_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    os.close(0)
    sys.stdin = None  # reading stdin is an error, not an empty string
    os.chdir(os.path.join(config["scratch"], "work"))
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "HOME": os.getcwd(), "LANG": "C.UTF-8"})
    uid = config["drop_to_uid"]
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid):
            raise OSError("could not drop privileges")
    # After the uid change, which clears it: die with the zygote (under isolation `none` there is
    # no namespace to take the child down with it).
    seccomp.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != zygote:
        raise OSError("the zygote is gone")
    cpu = int(config["timeout"]) + 1
    for limit, value in (
        (resource.RLIMIT_AS, config["memory_mb"] * 2**20),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_FSIZE, FILE_SIZE_LIMIT),
        (resource.RLIMIT_NOFILE, OPEN_FILES_LIMIT),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, 0),  # no new process or thread (void as root: uid dropped above)
    ):
        resource.setrlimit(limit, (value, value + 1 if limit == resource.RLIMIT_CPU else value))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails, it does not kill
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if config["seccomp"]:
        seccomp.install(os.getpid())


def _run(request: dict, config: dict) -> dict:
    """Run `f(*input)`, or a program and its tests, and describe the outcome: status, canonical
    output or error text."""
    if "tests" in request:
        return _run_tests(request["program"], request["tests"])
    try:
        arguments = literals.parse_arguments(request["input"], config["max_input_chars"])
    except literals.NotPlainData as error:  # the caller checked already: not expected
        return {"status": "error", "output": None, "error": f"input: {error}"}
    namespace: dict[str, Any] = {"__name__": "__program__", "__builtins__": builtins}
    try:
        exec(compile(request["program"], "<program>", "exec"), namespace)
        f = namespace.get("f")
        if not callable(f):
            return {"status": "error", "output": None, "error": "the program defines no function f"}
        value = f(*arguments.args, **arguments.kwargs)
    except MemoryError:
        return {"status": "memory", "output": None, "error": "MemoryError: out of memory"}
    except BaseException as error:  # SystemExit and KeyboardInterrupt included
        return {"status": "error", "output": None, "error": _describe(error)}
    gc.disable()  # no finalizer of the program's objects runs while the output is written
    try:
        output = literals.canonical(value, config["max_output_chars"])
    except literals.NotPlainData as error:
        return {"status": "invalid_output", "output": None, "error": str(error)}
    except BaseException as error:
        return {"status": "invalid_output", "output": None, "error": _describe(error)}
    return {"status": "ok", "output": output, "error": ""}


def _run_tests(program: str, tests: str) -> dict:
    """Run `program`, then `tests` in its namespace: ok (output `None`) iff neither raises."""
    namespace: dict[str, Any] = {"__name__": "__program__", "__builtins__": builtins}
    try:
        exec(compile(program, "<program>", "exec"), namespace)
        exec(compile(tests, "<tests>", "exec"), namespace)
    except MemoryError:
        return {"status": "memory", "output": None, "error": "MemoryError: out of memory"}
    except BaseException as error:  # SystemExit and KeyboardInterrupt included
        return {"status": "error", "output": None, "error": _describe(error)}
    return {"status": "ok", "output": "None", "error": ""}


def _describe(error: BaseException) -> str:
    """`ZeroDivisionError: division by zero (line 3)`: the exception and where in the program (or
    `(tests line 5)` when a test raised it)."""
    try:
        text = type(error).__name__ + (f": {error}" if str(error) else "")
    except BaseException:
        text = type(error).__name__
    where = None
    traceback = error.__traceback__
    while traceback is not None:
        filename = traceback.tb_frame.f_code.co_filename
        if filename in ("<program>", "<tests>"):
            where = f"line {traceback.tb_lineno}" if filename == "<program>" else f"tests line {traceback.tb_lineno}"
        traceback = traceback.tb_next
    if where is not None:
        text += f" ({where})"
    return text[:_MAX_ERROR_CHARS]


if __name__ == "__main__":
    main()
