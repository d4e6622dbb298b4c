"""The sandboxed child: confine itself, say so, read one request, run it, report, exit.

A child is created by the zygote (azr.executor.zygote) before its request exists. Everything up to
the request is `_confine`, most of it irreversible; once it holds, the child writes one byte,
CONFINED, on its result pipe, and only then reads the request. So a child that dies before that
byte failed to build its sandbox (the worker is replaced), and one that dies after it is a program
ending as it chose, whatever code or message it leaves: no program can pass for a broken sandbox.

Standard library only (and this package's stdlib-only modules): the worker runs with `-S`.
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
import sys
import types
from typing import Any, NoReturn

from azr.executor import literals, namespaces, plain, seccomp, trace
from azr.executor.policy import Policy
from azr.executor.protocol import SETUP_FAILED

RESULT_FD, REQUEST_FD, ZYGOTE_FD = 3, 4, 5
"""The child's descriptors: 0 closed, 1 and 2 the capture pipe, 3 its result, 4 its request
(closed once read), 5 a pidfd of the zygote (closed once checked)."""
CONFINED = b"\x06"
"""Written first on the result pipe, once the child is confined and before it reads its request."""

_policy: Policy | None = None
"""Built once in the worker (`prepare`): every child arms its own copy when its request has a policy."""


def prepare() -> None:
    """What every child will need, built once in the worker, once sys.path and the preloaded
    modules are in place."""
    global _policy
    _policy = Policy(sys.path)


FILE_SIZE_LIMIT = 16 * 2**20
OPEN_FILES_LIMIT = 64
PR_SET_PDEATHSIG = 1
MAX_ERROR_CHARS = 1000


def main(config: dict, zygote_pidfd: int, request: int, result: int, output: int, fresh: bool) -> NoReturn:
    """The child's life, from the fork to its exit. `fresh`: it was cloned into a pid namespace of
    its own, with a fresh tmpfs as its private directory (azr.executor.namespaces)."""
    try:
        os.setsid()  # its own session and process group, so one kill reaches all of it
        _confine(config, zygote_pidfd, request, result, output, fresh)
        os.write(RESULT_FD, CONFINED)
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
        reply = {"status": "error", "output": None, "error": f"sandbox: {error!r}"[:MAX_ERROR_CHARS]}
    for stream in (sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(BaseException):
            stream.flush()
    data = json.dumps(reply).encode()
    try:
        while data:
            data = data[os.write(RESULT_FD, data) :]
    finally:
        os._exit(0)


def _confine(config: dict, zygote_pidfd: int, request: int, result: int, output: int, fresh: bool) -> None:
    """Everything between the fork and the request."""
    # Descriptors: only the capture pipe (as stdout and stderr), the result and request pipes and
    # the zygote's pidfd survive; everything inherited from the zygote is closed.
    result, request, output, zygote_pidfd = (
        fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (result, request, output, zygote_pidfd)
    )
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.dup2(result, RESULT_FD)
    os.dup2(request, REQUEST_FD)
    os.dup2(zygote_pidfd, ZYGOTE_FD)
    os.closerange(ZYGOTE_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    os.close(0)
    sys.stdin = None  # reading stdin is an error, not an empty string
    os.chdir(namespaces.PRIVATE_DIRECTORY if fresh else os.path.join(config["scratch"], "work"))
    os.environ.clear()  # libfaketime's offset among it: read once by the worker, for good
    os.environ.update({"PATH": "/usr/bin:/bin", "HOME": os.getcwd(), "LANG": "C.UTF-8"})
    uid = config["drop_to_uid"]
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid):
            raise OSError("could not drop privileges")
    if fresh:
        namespaces.drop_capabilities()
    # After the uid change, which clears it: die with the zygote (under isolation `none` there is
    # no namespace to take the child down with it). Then make sure the zygote did not die first.
    seccomp.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if select.select([ZYGOTE_FD], [], [], 0)[0]:
        raise OSError("the zygote is gone")
    os.close(ZYGOTE_FD)
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
    policy = None
    if request.get("policy") is not None:
        policy = _policy  # built by prepare() in the worker, before any child
        policy.arm(request["policy"]["banned_modules"])
        for name in [name for name in sys.modules if name.partition(".")[0] == "azr"]:
            del sys.modules[name]  # the sandbox's own modules, this policy among them: out of the program's reach
    namespace = _program_namespace()
    tracer = trace.Tracer(request["trace"]) if request.get("trace") else None
    try:
        exec(compile(request["program"], trace.PROGRAM_FILE, "exec"), namespace)
        f = namespace.get("f")
        if not callable(f):
            return {"status": "error", "output": None, "error": "the program defines no function f"}
        if tracer is None:
            value = f(*arguments.args, **arguments.kwargs)
        else:
            value = tracer.run(lambda: f(*arguments.args, **arguments.kwargs))
    except MemoryError:
        return _refused(policy) or {"status": "memory", "output": None, "error": "MemoryError: out of memory"}
    except BaseException as error:  # SystemExit and KeyboardInterrupt included
        return _refused(policy) or {"status": "error", "output": None, "error": _describe(error)}
    refused = _refused(policy)
    if refused:
        return refused
    gc.disable()  # no finalizer of the program's objects runs while the output is written
    try:
        output = plain.canonical(value, config["max_output_chars"])
    except plain.NotPlainData as error:
        return {"status": "invalid_output", "output": None, "error": str(error)}
    except BaseException as error:
        return {"status": "invalid_output", "output": None, "error": _describe(error)}
    if tracer is not None:
        return {"status": "ok", "output": output, "error": "", "trace": tracer.trace()}
    return {"status": "ok", "output": output, "error": ""}


def _program_namespace() -> dict[str, Any]:
    """The globals of a module `__program__`, registered in sys.modules as an imported module is:
    what dataclasses, typing and pickle look a class's module up in."""
    module = types.ModuleType("__program__")
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules["__program__"] = module
    return module.__dict__


def _refused(policy: Any) -> dict | None:
    if policy is None or not policy.refused:
        return None
    return {"status": "banned", "output": None, "error": f"refused at run time: {policy.refused}"[:MAX_ERROR_CHARS]}


def _run_tests(program: str, tests: str) -> dict:
    """Run `program`, then `tests` in its namespace: ok (output `None`) iff neither raises."""
    namespace = _program_namespace()
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
    return text[:MAX_ERROR_CHARS]
