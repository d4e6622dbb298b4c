"""Defence in depth at the stage boundaries of a step: a bug of ours costs one sample, not the run.

Every completion is hostile input to our parsers, filters and comparisons, and some input will find
a bug that the tests did not (an exception no one expected: a TypeError from a literal, a
RecursionError from a deep syntax tree). Each stage handles its samples one at a time through
`guarded`, so such an exception rejects that sample as `internal_error`, with what was raised and
where, and the rest of the batch and the step go on; the step counts and logs them loudly.

Only per-sample work is guarded. The executor's batch call is not: a sandbox that cannot start must
stop the run with its own error. KeyboardInterrupt and SystemExit are not Exceptions, so they pass.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from azr.tasks import InternalError, Stage

P = ParamSpec("P")
T = TypeVar("T")

MESSAGE_CHARS = 300
"""Longest exception message kept in a detail: a message can quote a whole completion."""

_PACKAGE = Path(__file__).resolve().parent


def guarded(stage: Stage, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | InternalError:
    """`work(*args, **kwargs)`, or the InternalError it raised while handling one sample."""
    try:
        return work(*args, **kwargs)
    except Exception as error:
        return InternalError(stage, describe(error))


def describe(error: BaseException) -> str:
    """`TypeError: unhashable type: 'list' (azr/executor/literals.py:311)`: the type, the message
    (escaped, capped), and the innermost frame; when that is outside azr (deep in `ast`), our last
    frame too."""
    try:
        message = str(error)
    except Exception:  # an exception whose __str__ raises still gets reported
        message = "<the message cannot be shown>"
    if not message.isprintable():  # model text in a message: no terminal escapes, no lone surrogates
        message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    if len(message) > MESSAGE_CHARS:
        message = message[:MESSAGE_CHARS] + "..."
    frames = []
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename != __file__:  # not `guarded` itself
            frames.append((traceback.tb_frame.f_code.co_filename, traceback.tb_lineno))
        traceback = traceback.tb_next
    where = ""
    if frames:
        where = _place(*frames[-1])
        ours = next((frame for frame in reversed(frames) if _ours(frame[0])), None)
        if ours is not None and ours != frames[-1]:
            where += f", from {_place(*ours)}"
    return f"{type(error).__name__}: {message}" + (f" ({where})" if where else "")


def _ours(filename: str) -> bool:
    return Path(filename).resolve().is_relative_to(_PACKAGE)


def _place(filename: str, line: int) -> str:
    """`azr/...py:N` for our files, `dir/file.py:N` for others, `<string>:N` for code without a file."""
    path = Path(filename)
    if not path.is_absolute():
        return f"{filename}:{line}"
    path = path.resolve()
    shown = path.relative_to(_PACKAGE.parent) if path.is_relative_to(_PACKAGE) else Path(path.parent.name, path.name)
    return f"{shown.as_posix()}:{line}"
