"""Plots of runs, from their metrics.jsonl: curves of any metric over the steps, one line per run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    panels: Sequence[tuple[str, Sequence[str]] | tuple[str, Sequence[str], int]],
    out: Path,
    title: str = "",
    label: Callable[[str, str], str] | None = None,
) -> Path:
    """One panel per (panel title, metric keys[, window]); in each, a line per (run, key) over the
    steps, as a trailing mean over `window` points when one is given (per-step rates of a few
    proposals are too noisy to read raw).

    `runs` maps a run's name to its metrics rows (metrics.jsonl). Missing values are skipped, so a
    metric logged every few steps (eval/...) draws as a line through its points. `label(run, key)`
    names a line; by default the run, and the key's next-to-last part when a panel has several keys.
    A panel's legend sits beside it past four lines, and is left out for a single line named by `label`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(panels))
    rows = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.6 * rows), squeeze=False)
    for axis, (panel, keys, *window) in zip(axes.flat, panels, strict=False):
        for name, metrics in runs.items():
            for key in keys:
                points = [(m["step"], m[key]) for m in metrics if m.get(key) is not None]
                if points:
                    steps, values = zip(*points, strict=True)
                    values = trailing_mean(values, window[0]) if window else values
                    if label is not None:
                        text = label(name, key)
                    else:
                        text = name if len(keys) == 1 else f"{name}: {key.split('/')[-2]}"
                    axis.plot(steps, values, marker="o" if len(points) < 30 else None, markersize=3, label=text)
        axis.set_title(f"{panel} ({window[0]}-step mean)" if window else panel, fontsize=10)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        if len(axis.lines) > 4:
            axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        elif axis.lines and (len(axis.lines) > 1 or label is None):
            axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def trailing_mean(values: Sequence[float], window: int) -> list[float]:
    """Each point's mean with the up to `window - 1` points before it."""
    return [sum(values[max(0, i - window + 1) : i + 1]) / (i + 1 - max(0, i - window + 1)) for i in range(len(values))]
