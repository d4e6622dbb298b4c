"""The sandbox worker: a lean fork server that runs each untrusted program in its own child.

The calling process starts one worker per slot, inside bubblewrap when it can, as
`python -S -s -B -c ...` with a scrubbed environment. The worker imports only the standard library
and this package's `literals` and `seccomp`, preloads the modules programs commonly import, and
then serves requests: one JSON line in on stdin, one JSON line out on stdout. It never runs
untrusted code itself: each request is run by a forked child that first confines itself (see
`_confine`) and then reports through a pipe of its own. The worker judges nothing; it reports what
it saw (the child's message, its exit status, whether it had to kill it) and the calling process
decides the verdict (`azr.executor.protocol.interpret`). See azr.executor for the threat model.
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
import stat
import sys
import time
from typing import Any, NoReturn

from azr.executor import literals, seccomp
from azr.executor.protocol import SETUP_FAILED

PRELOAD = [
    "abc",
    "array",
    "bisect",
    "cmath",
    "collections",
    "collections.abc",
    "copy",
    "dataclasses",
    "datetime",
    "decimal",
    "enum",
    "fractions",
    "functools",
    "hashlib",
    "heapq",
    "itertools",
    "json",
    "math",
    "numbers",
    "operator",
    "re",
    "statistics",
    "string",
    "textwrap",
    "typing",
    "unicodedata",
]
"""Imported once by the worker, so children import them for free (and, where the interpreter's
files cannot be read after the uid drop, at all)."""

RESULT_FD = 3
"""The child's result channel; stdin is closed, stdout and stderr go to the capture pipe."""

FILE_SIZE_LIMIT = 16 * 2**20
OPEN_FILES_LIMIT = 64

_MAX_ERROR_CHARS = 1000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4


def main() -> None:
    config = json.loads(sys.argv[1])
    # Not dumpable: a child with the worker's uid (unprivileged bubblewrap) cannot open
    # /proc/<worker>/mem or ptrace it.
    seccomp.prctl(PR_SET_DUMPABLE, 0)
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    gc.collect()
    gc.freeze()  # fewer copy-on-write faults in the children
    canary = serve({"program": "def f(x):\n    return x", "input": "[1]"}, config)
    ready = canary["returncode"] == 0 and _frame_status(canary["frame"]) == "ok"
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
        _send(serve(json.loads(line), config))


def _send(message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(1, data) :]


def _frame_status(frame: str | None) -> Any:
    try:
        return json.loads(frame or "").get("status")
    except (ValueError, AttributeError):
        return None


# ---------------------------------------------------------------------------------------------
# the worker's side of one request


def serve(request: dict, config: dict) -> dict:
    """Run one request in a fresh child; return what was seen, for the caller to interpret."""
    private = os.path.join(config["scratch"], "work")
    os.mkdir(private, 0o700)
    if config["drop_to_uid"] is not None:
        os.chown(private, config["drop_to_uid"], config["drop_to_uid"])
    result_r, result_w = os.pipe()
    output_r, output_w = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(request, config, private, result_w, output_w)
    os.close(result_w)
    os.close(output_w)
    try:
        reply = _watch(pid, result_r, output_r, started, config)
    finally:
        os.close(result_r)
        os.close(output_r)
    if not _wipe(config["wipe"]):
        # Something the child left cannot be removed: stop, and let the caller start a fresh
        # sandbox rather than serve the next request beside it.
        _send(reply)
        sys.exit(3)
    return reply


def _watch(pid: int, result_r: int, output_r: int, started: float, config: dict) -> dict:
    """Collect the child's result and output until it exits; kill it at the deadline."""
    deadline = started + config["timeout"]
    max_frame = 8 * config["max_output_chars"] + 4 * _MAX_ERROR_CHARS + 4096
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    for fd in (result_r, output_r, pidfd):
        poller.register(fd, select.POLLIN)
    frame, captured = bytearray(), bytearray()
    open_pipes = {result_r, output_r}
    exited, killed = False, None
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
                continue
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
        for kill in (os.killpg, os.kill):
            with contextlib.suppress(ProcessLookupError):
                kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    seconds = time.monotonic() - started
    os.close(pidfd)
    return {
        "frame": None if killed else frame.decode("utf-8", "replace"),
        "returncode": os.waitstatus_to_exitcode(status),
        "killed": killed,
        "stdout": captured[: config["max_stdout_bytes"]].decode("utf-8", "replace"),
        "seconds": round(seconds, 6),
    }


def _wipe(roots: list[str]) -> bool:
    """Empty each of `roots`, whatever modes the child set; False if that failed.

    Iterative, never following a symlink, and safe from races: the child is dead and nothing
    else can write here.
    """
    try:
        for root in roots:
            if not os.path.isdir(root):
                continue
            directories = [root]
            pending = [root]
            while pending:
                directory = pending.pop()
                mode = 0o700 if directory != root else stat.S_IMODE(os.lstat(root).st_mode) | 0o700
                os.chmod(directory, mode)
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            directories.append(entry.path)
                            pending.append(entry.path)
                        else:
                            os.unlink(entry.path)
            for directory in reversed(directories[1:]):
                os.rmdir(directory)
    except (OSError, RecursionError, MemoryError):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# the child: confine, run, report, exit


def _child(request: dict, config: dict, private: str, result_w: int, output_w: int) -> NoReturn:
    try:
        os.setsid()  # its own session and process group, so one killpg reaches all of it
        _confine(config, private, result_w, output_w)
    except BaseException as error:  # never run the program in a half-built sandbox
        for fd in (RESULT_FD, result_w):
            try:
                os.write(fd, f"sandbox setup failed: {error!r}".encode()[:2000])
                break
            except BaseException:
                pass
        os._exit(SETUP_FAILED)
    try:
        message = _run(request, config)
    except BaseException as error:
        message = {"status": "error", "output": None, "error": f"sandbox: {error!r}"[:_MAX_ERROR_CHARS]}
    for stream in (sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(BaseException):
            stream.flush()
    data = json.dumps(message).encode()
    try:
        while data:
            data = data[os.write(RESULT_FD, data) :]
    finally:
        os._exit(0)


def _confine(config: dict, private: str, result_w: int, output_w: int) -> None:
    """Everything between the fork and the program, most of it irreversible."""
    # Descriptors: only the capture pipe (as stdout and stderr) and the result pipe survive,
    # so the program cannot write to the worker's channel to the caller.
    result = fcntl.fcntl(result_w, fcntl.F_DUPFD, 10)  # copies clear of 0-3, which dup2 overwrites
    output = fcntl.fcntl(output_w, fcntl.F_DUPFD, 10)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.dup2(result, RESULT_FD)
    os.closerange(RESULT_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    os.close(0)
    sys.stdin = None  # reading stdin is an error, not an empty string
    os.chdir(private)
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "HOME": private, "LANG": "C.UTF-8"})
    uid = config["drop_to_uid"]
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise OSError("could not drop privileges")
    # After the uid change, which clears it: die with the worker (in the `none` isolation there
    # is no namespace to take the child down with it).
    seccomp.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:
        raise OSError("the worker is gone")
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
    """Run `f(*input)` and describe the outcome: status, canonical output or error text."""
    try:
        arguments = literals.parse_arguments(request["input"], config["max_input_chars"])
    except literals.NotPlainData as error:
        return {"status": "invalid_input", "output": None, "error": str(error)}
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


def _describe(error: BaseException) -> str:
    """`ZeroDivisionError: division by zero (line 3)`: the exception and where in the program."""
    try:
        text = f"{type(error).__name__}: {error}"
    except BaseException:
        text = type(error).__name__
    line = None
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<program>":
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    if line is not None:
        text += f" (line {line})"
    return text[:_MAX_ERROR_CHARS]


if __name__ == "__main__":
    main()
