"""What a run shows and hears on its terminal: the progress bar, and Ctrl-C / SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from typing import Any


class StopOnSignal:
    """The first Ctrl-C (or SIGTERM) asks the loop to stop after the current step; the same signal
    again, a second or more later, stops at once. Within that second it is the same request heard
    twice (SLURM signals every process of a job, and torchrun passes its own signal on to each
    rank), and another signal (a supervisor's SIGTERM after a Ctrl-C) is no second request either.
    `say`: whether to say so (under torchrun every rank hears the signal; rank 0 says it)."""

    REPEAT = 1.0
    """Seconds within which the same signal again is the same request."""

    def __init__(self, say: bool = True) -> None:
        self.say = say
        self._first = 0.0
        self.requested: int | None = None
        """The signal that asked to stop; None until one does."""
        self._previous = {}
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: no handler
                self._previous[number] = signal.signal(number, self._handle)

    def _handle(self, number: int, frame: Any) -> None:
        if self.requested == number and time.monotonic() - self._first > self.REPEAT:
            print("\nazr: stopped; the last checkpoint stands (run the same command to resume)", file=sys.stderr)
            if number == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + number)  # the shell's code for the signal, as for the first one
        if self.requested is None:
            self.requested, self._first = number, time.monotonic()
            if self.say:
                print("\nazr: finishing this step, then saving (Ctrl-C again to stop now)", file=sys.stderr)

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


class Progress:
    """A rich progress bar with the step's key numbers; plain lines without a console; nothing when
    `quiet` (ranks other than 0)."""

    def __init__(self, console: Any, total: int, start: int, quiet: bool = False) -> None:
        self.console, self.total, self.start, self.quiet = console, total, start, quiet

    def __enter__(self) -> Any:
        if self.quiet:
            return lambda step, metrics: None
        if self.console is None:
            return lambda step, metrics: print(f"step {step}/{self.total} {_summary(metrics)}", flush=True)
        from rich import progress as rich

        self.bar = rich.Progress(
            rich.TextColumn("[bold]step"), rich.MofNCompleteColumn(), rich.BarColumn(), rich.TimeRemainingColumn(),
            rich.TextColumn("{task.description}"), console=self.console,
        )  # fmt: skip
        self.bar.start()
        task = self.bar.add_task("", total=self.total, completed=self.start)

        def update(step: int, metrics: dict[str, float]) -> None:
            self.bar.update(task, completed=step, description=_summary(metrics))

        return update

    def __exit__(self, *_: object) -> None:
        if self.console is not None and not self.quiet:
            self.bar.stop()


def _summary(metrics: dict[str, float]) -> str:
    def mean(prefix: str, suffix: str) -> float | None:
        values = [v for k, v in metrics.items() if k.startswith(prefix) and k.endswith(suffix) and v is not None]
        return sum(values) / len(values) if values else None

    parts = []
    valid = mean("propose/", "/valid_rate")
    accuracy = mean("solve/", "/accuracy")
    if valid is not None:
        parts.append(f"valid {valid:.2f}")
    if accuracy is not None:
        parts.append(f"solved {accuracy:.2f}")
    parts.append(f"{metrics.get('time/step', 0):.1f}s/step")
    return "  ".join(parts)
