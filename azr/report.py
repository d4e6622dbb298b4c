"""Reading a run back: a compact text summary of its metrics (printed at the end of `azr train`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from azr.tasks import TaskType

TYPES = tuple(t.value for t in TaskType)


def summary(rows: Sequence[Mapping[str, Any]], window: int = 10) -> str:
    """Per task type: valid-proposal rate and solver accuracy (means of the first and last `window`
    steps) and held-out pass@1 (first and last evaluation); then the step time and buffer sizes."""
    steps = [r for r in rows if r.get("step", 0) > 0]
    if not steps:
        return "no steps yet"
    evals = [r for r in rows if any(key.startswith("eval/") for key in r)]
    lines = [
        f"steps {steps[0]['step']}-{steps[-1]['step']}: first -> last {window} steps (held-out: first -> last eval)"
    ]
    lines.append(f"{'':<10} {'valid proposals':>16} {'solver accuracy':>16} {'held-out pass@1':>16}")
    for task_type in TYPES:
        valid = _first_last(steps, f"propose/{task_type}/valid_rate", window)
        solved = _first_last(steps, f"solve/{task_type}/accuracy", window)
        heldout = _first_last(evals, f"eval/{task_type}/pass@1", 1)
        if valid or solved or heldout:
            lines.append(f"{task_type:<10} {valid:>16} {solved:>16} {heldout:>16}")
    seconds = [r["time/step"] for r in steps if "time/step" in r]
    sizes = ", ".join(f"{t} {steps[-1][f'store/{t}/size']}" for t in TYPES if f"store/{t}/size" in steps[-1])
    if seconds:
        lines.append(f"{sum(seconds) / len(seconds):.1f} s a step" + (f"; buffers: {sizes}" if sizes else ""))
    return "\n".join(lines)


def first_last(rows: Sequence[Mapping[str, Any]], key: str, window: int) -> tuple[float, float] | None:
    """Means of `key` over the first and the last `window` rows that have it; None if none has."""
    values = [r[key] for r in rows if r.get(key) is not None]
    if not values:
        return None
    first, last = values[:window], values[-window:]
    return sum(first) / len(first), sum(last) / len(last)


def _first_last(rows: Sequence[Mapping[str, Any]], key: str, window: int) -> str:
    means = first_last(rows, key, window)
    return f"{means[0]:.2f} -> {means[1]:.2f}" if means else ""
