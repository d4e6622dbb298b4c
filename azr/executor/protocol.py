"""What crosses the sandbox boundary: requests, results, and how a worker's report becomes a result.

Everything that comes back from a worker is untrusted bytes: a program may have written to its
result channel, exited early, or crashed. `interpret` is the one place that turns a report into a
verdict, and it accepts an `ok` only for a single well-formed message carrying a canonical
plain-data repr within the size limit, from a child that then exited normally.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from enum import Enum
from typing import Any

from azr.executor.literals import is_canonical
from azr.executor.trace import MAX_EVENTS

SETUP_FAILED = 113
"""Exit code of a sandboxed child that could not confine itself; it never ran the program. Only a
child that never reported itself confined counts as one (azr.executor.child.CONFINED): the same
code from a program is an ordinary exit."""


class ExecStatus(str, Enum):
    """How a request ended. A closed set: metrics and verdicts switch on it."""

    OK = "ok"
    """`f` returned plain data; `output` holds its canonical repr."""
    ERROR = "error"
    """The program raised, exited, crashed, or broke a sandbox rule (too much stdout...)."""
    TIMEOUT = "timeout"
    """Wall-clock or CPU time limit reached; the whole process group was killed."""
    MEMORY = "memory"
    """The address-space limit was reached (MemoryError)."""
    INVALID_INPUT = "invalid_input"
    """The input is not a literal argument list; nothing was run."""
    INVALID_OUTPUT = "invalid_output"
    """`f` returned something that is not plain data, too deep, or too long."""
    BANNED = "banned"
    """The program reached, at run time, for something its request's policy forbids (a banned
    module, a file, a process, a socket, the clock or process ids); whatever it did next."""


@dataclass(frozen=True)
class Policy:
    """What a task program may not reach for at run time (azr.executor.policy): files, processes,
    sockets, ctypes, the clock, process ids, randomness, and imports of `banned_modules` (and of
    `_`-prefixed modules) asked for by the program. Breaking it ends the request as `banned`."""

    banned_modules: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExecRequest:
    """Run `program` (Python source defining `f`) on `input` (a literal argument list), under
    `policy` if given (self-play's tasks are; benchmarks' reference code and tests are not)."""

    program: str
    input: str
    policy: Policy | None = None
    trace: int = 0
    """Record up to this many trace events (azr.executor.trace: the values the program's variables
    take, line by line); 0, the default, runs untraced. For programs we wrote ourselves: a traced
    program can see and forge its trace."""


@dataclass(frozen=True)
class TraceEvent:
    """One step of a traced run: after line `line`, variable `name` showed `value` (a canonical
    repr, `<type>` or `...`); `name` is `return` for a function's return and `...` where the trace
    was cut at its cap."""

    line: int
    name: str
    value: str


@dataclass(frozen=True)
class TestRequest:
    """Run `program` (any Python source), then `tests` in the same namespace: asserts, or a
    `check(candidate)` call as HumanEval writes them. The result is ok (output `None`) iff neither
    raises; otherwise `error`, `timeout` or `memory` as for an ExecRequest, with the failing line.

    Same sandbox, limits and verdict channel as ExecRequest. The tests run in the program's own
    interpreter, so a program written to fake a pass (an object equal to everything, patched
    builtins, a forged result message) can: a test request scores benchmarks, it is not a reward
    to put in front of a policy that could learn to cheat it (see azr.executor's threat model).
    """

    __test__ = False  # not a pytest class

    program: str
    tests: str


@dataclass(frozen=True)
class ExecResult:
    """The verdict on one request."""

    status: ExecStatus
    output: str | None
    """Canonical repr of the returned value when status is ok, else None."""
    error: str
    """Short description of what went wrong; empty when ok."""
    seconds: float
    """Wall-clock time of the program's process (0 when nothing ran)."""
    stdout: str = ""
    """What the program printed (stdout and stderr, capped); for debugging only."""
    trace: tuple[TraceEvent, ...] = ()
    """The run's trace events when the request asked for them and it ended ok."""

    @property
    def ok(self) -> bool:
        return self.status is ExecStatus.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "output": self.output,
            "error": self.error,
            "seconds": self.seconds,
        }


def failed(status: ExecStatus, error: str, seconds: float = 0.0, stdout: str = "") -> ExecResult:
    return ExecResult(status, None, clean_text(error), seconds, clean_text(stdout))


def clean_text(text: str, limit: int = 2000) -> str:
    """`text` capped and made safe to print and to write as strict JSON: control characters other
    than newline and tab (terminal escapes, fake log lines) and lone surrogates are escaped."""
    text = text[:limit]
    if text.replace("\n", "").replace("\t", "").isprintable():
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else c.encode("unicode_escape").decode("ascii") for c in text)


# Not invalid_input: the caller checked the input before sending it, so a child claiming otherwise
# is a program writing to its result channel to shift the blame.
_CHILD_STATUSES = {"ok", "error", "memory", "invalid_output", "banned"}
_REPORT_KEYS = {"frame", "confined", "returncode", "killed", "stdout", "seconds", "retiring"}


class MalformedReport(ValueError):
    """The worker itself sent something it never would: the worker is not to be trusted."""


def interpret(report: Any, *, timeout: float, max_output_chars: int, max_stdout_bytes: int) -> ExecResult:
    """The verdict on one request from the worker's report of it.

    Raises MalformedReport if the report is not of the worker's own form.
    """
    if not (isinstance(report, dict) and set(report) == _REPORT_KEYS):
        raise MalformedReport(f"unexpected report: {str(report)[:200]}")
    frame, returncode, killed = report["frame"], report["returncode"], report["killed"]
    stdout, seconds = report["stdout"], report["seconds"]
    if not (
        (frame is None or isinstance(frame, str))
        and isinstance(returncode, int)
        and killed in (None, "timeout", "stdout", "frame")
        and isinstance(stdout, str)
        and isinstance(seconds, (int, float))
        and isinstance(report["retiring"], bool)
        and isinstance(report["confined"], bool)
    ):
        raise MalformedReport(f"unexpected report: {str(report)[:200]}")
    seconds = float(seconds)

    def error(text: str, status: ExecStatus = ExecStatus.ERROR) -> ExecResult:
        return failed(status, text, seconds, stdout)

    if not report["confined"]:
        # Dead (or killed) before it could confine itself: the sandbox failed, not the program.
        detail = frame if (frame or "").startswith("sandbox setup failed") else "the child died before confining itself"
        return error(detail or "sandbox setup failed")
    if killed == "timeout":
        return error(f"timed out after {timeout:g} s", ExecStatus.TIMEOUT)
    if killed == "stdout":
        return error(f"printed more than {max_stdout_bytes} bytes")
    if killed == "frame":
        return error("wrote an oversized message to the result channel")
    if returncode == -signal.SIGXCPU:
        return error("exceeded its CPU time limit", ExecStatus.TIMEOUT)
    if returncode < 0:
        name = _signal_name(-returncode)
        hint = " (killed from outside, or out of memory)" if returncode == -signal.SIGKILL else ""
        return error(f"crashed with {name}{hint}")
    if returncode != 0:
        return error(f"exited with code {returncode} before returning")
    if not frame:
        return error("exited before returning (sys.exit or os._exit)")
    message = _parse_frame(frame)
    if message is None:
        return error("malformed result message (did the program write to the result channel?)")
    status = ExecStatus(message["status"])
    if status is not ExecStatus.OK:
        return error(message["error"] or status.value, status)
    if not is_canonical(message["output"], max_output_chars):
        return error("result is not a canonical plain-data repr (did the program forge it?)")
    trace = tuple(TraceEvent(*event) for event in message.get("trace", ()))
    return ExecResult(ExecStatus.OK, message["output"], "", seconds, clean_text(stdout), trace)


def _parse_frame(frame: str) -> dict | None:
    """The child's one JSON message, or None if it is anything else."""
    try:
        message = json.loads(frame)
    except (ValueError, RecursionError):
        return None
    if not (
        isinstance(message, dict)
        and set(message) - {"trace"} == {"status", "output", "error"}
        and ("trace" not in message or (message["status"] == "ok" and _is_trace(message["trace"])))
        and isinstance(message["status"], str)
        and message["status"] in _CHILD_STATUSES
        and isinstance(message["error"], str)
    ):
        return None
    ok = message["status"] == "ok"
    if ok != isinstance(message["output"], str) or (not ok and message["output"] is not None):
        return None
    return message


_TRACE_TEXT = 200


def _is_trace(trace: Any) -> bool:
    return (
        isinstance(trace, list)
        and len(trace) <= MAX_EVENTS
        and all(
            isinstance(event, list)
            and len(event) == 3
            and type(event[0]) is int
            and all(isinstance(text, str) and len(text) <= _TRACE_TEXT and text.isprintable() for text in event[1:])
            for event in trace
        )
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
