"""Trace mode: the values a program's variables take as it runs, line by line, capped.

A person working out what `f(4)` returns writes down `x=4`, then `y=7`, then `return 14`. The
embedded model's pretraining transcripts put such a trace in the solver's thinking section
(azr.base.corpus), and the trace is recorded by running the program, in the sandbox, under
`sys.settrace`: after each line of the program (and of its helpers), every local whose value
changed, rebinding or mutation alike, is one event; a function's return is one more.

Events are shown as canonical reprs (azr.executor.plain: exact types only, so no program-defined
`__repr__` runs in the tracer); a value that is not plain data shows as its type's name in angle
brackets, one longer than VALUE_CHARS as `...`. Comprehensions, generator expressions and lambdas
are not followed (their loop variables would flood the trace; their result shows in the line that
uses them). Tracing stops at the request's cap, and the trace then ends with a `...` event.

A traced program can see that it is traced (`sys.gettrace`) and write whatever it likes into its
result channel, so a trace is untrusted text, checked for shape and size like any output, and never
a verdict: it is for programs we generated ourselves. Standard library only: the worker runs it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from azr.executor import plain

VALUE_CHARS = 60
"""Longest value shown; a longer one shows as `...`."""
MAX_EVENTS = 256
"""The most events a request may ask for (the result channel's size is bounded)."""
PROGRAM_FILE = "<program>"
CUT = "..."
"""The name and value of the event that ends a trace cut at its cap."""


def show(value: Any) -> str:
    """A value as the trace shows it: its canonical repr, `...` if too long, `<type>` if not plain."""
    try:
        return plain.canonical(value, VALUE_CHARS)
    except plain.NotPlainData as error:
        return CUT if "longer than" in str(error) else f"<{type(value).__name__}>"
    except Exception:
        return f"<{type(value).__name__}>"


class Tracer:
    """Collects `[line, name, value]` events of the program's own frames, up to `cap`."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.events: list[list[Any]] = []
        self._seen: dict[int, tuple[int, dict[str, str]]] = {}
        """Per frame (by id): the line it last began, and what its locals showed then."""

    def run(self, call: Callable[[], Any]) -> Any:
        sys.settrace(self._enter)
        try:
            return call()
        finally:
            sys.settrace(None)

    def trace(self) -> list[list[Any]]:
        """The events, the last replaced by a `...` event if there were more than `cap`."""
        if len(self.events) <= self.cap:
            return self.events
        return [*self.events[: self.cap - 1], [self.events[self.cap - 1][0], CUT, CUT]]

    @property
    def full(self) -> bool:
        return len(self.events) > self.cap

    def _enter(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        code = frame.f_code
        if event != "call" or code.co_filename != PROGRAM_FILE or code.co_name.startswith("<") or self.full:
            return None
        shown = self._locals(frame)
        for name, value in shown.items():  # the arguments, as bound
            self._add(frame.f_lineno, name, value)
        self._seen[id(frame)] = (frame.f_lineno, shown)
        return self._step

    def _step(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if self.full:
            return None
        if event not in ("line", "return"):
            return self._step
        line, before = self._seen.get(id(frame), (frame.f_lineno, {}))
        shown = self._locals(frame)
        for name, value in shown.items():  # what the line just run changed
            if before.get(name) != value:
                self._add(line, name, value)
        if event == "return":
            self._seen.pop(id(frame), None)
            self._add(frame.f_lineno, "return", show(arg))
            return None
        self._seen[id(frame)] = (frame.f_lineno, shown)
        return self._step

    def _locals(self, frame: FrameType) -> dict[str, str]:
        return {name: show(value) for name, value in list(frame.f_locals.items()) if not name.startswith(".")}

    def _add(self, line: int, name: str, value: str) -> None:
        if not self.full:
            self.events.append([line, name, value])
