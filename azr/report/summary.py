"""Reading a run back: a compact text summary of its metrics (printed at the end of `azr train`), and
the static HTML report of a run directory (`azr report`): plots, summary, task store, samples, config.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azr.tasks.registry import REGISTRY
from azr.tasks.store import StoreError, TaskStore

TYPES = tuple(REGISTRY)


def summary(rows: Sequence[Mapping[str, Any]], window: int = 10) -> str:
    """Per task type: valid-proposal rate and solver accuracy (means of the first and last `window`
    steps) and held-out pass@1 (first and last evaluation); then the step time and buffer sizes, and
    the samples that hit internal errors (bugs in azr), if any did."""
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
    benches = sorted({m["bench"] for r in evals for key in r if (m := _EVAL.match(key)) and m["bench"]})
    for bench in benches:  # named validation benchmarks: eval/<bench>/<type>/pass@1
        for task_type in TYPES:
            scores = _first_last(evals, f"eval/{bench}/{task_type}/pass@1", 1)
            if scores:
                lines.append(f"{task_type:<10} {'':>16} {'':>16} {scores:>16}  ({bench})")
    seconds = [r["time/step"] for r in steps if "time/step" in r]
    sizes = ", ".join(f"{t} {steps[-1][f'store/{t}/size']}" for t in TYPES if f"store/{t}/size" in steps[-1])
    if seconds:
        lines.append(f"{sum(seconds) / len(seconds):.1f} s a step" + (f"; buffers: {sizes}" if sizes else ""))
    errors = [r["errors/internal"] for r in steps if r.get("errors/internal")]
    if errors:
        lines.append(f"{sum(errors):g} samples hit internal errors (bugs in azr) in {len(errors)} steps: samples.jsonl")
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


# -- the HTML report of a run directory (`azr report`) --------------------------------------------

PLOTS = {  # PNG file stem: title
    "rewards": "rewards and accuracies",
    "proposals": "proposals: valid and rejected",
    "store": "task store: growth and diversity",
    "validation": "validation",
    "timings": "timings",
    "update": "policy update",
}
_EVAL = re.compile(r"^eval/(?:(?P<bench>.+)/)?(?P<name>[^/]+)/pass@(?P<k>\d+)$")


@dataclass
class PlotGroup:
    """One PNG of a report: its file stem, title, `curves()` panels, and a legend label per metric key.
    No panels when the run logged none of the group's metrics."""

    name: str
    title: str
    panels: list[tuple[str, list[str]] | tuple[str, list[str], int]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON Lines file, in order; lines that are not one (a crash can cut the last
    line short) are skipped, as is text that is not UTF-8."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(row, dict):
                yield row


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl that have an integer step, keeping only numeric (or null) values, so
    a damaged line cannot break the summary or the plots."""
    rows = []
    for row in iter_jsonl(path):
        if isinstance(row.get("step"), int):
            rows.append({k: v for k, v in row.items() if v is None or _number(v)})
    return rows


def smoothing_window(steps: int) -> int:
    """Points in the trailing mean of per-step rates: none for a short run, 5 for tens of steps, about
    1/200 of the run beyond (a rate over a few proposals is too noisy to read raw)."""
    return 1 if steps < 20 else max(5, steps // 200)


def plot_groups(rows: Sequence[Mapping[str, Any]]) -> list[PlotGroup]:
    """The report's plots, each limited to the metrics the run has: rewards and accuracies, proposals
    (valid rate, rejection reasons, internal errors), store growth and diversity, validation scores (every
    eval/.../pass@k key), timings, and the policy update."""
    keys = set().union(*rows) if rows else set()
    window = smoothing_window(sum(1 for r in rows if r["step"] > 0))
    groups = {name: PlotGroup(name, title) for name, title in PLOTS.items()}

    def add(group: str, title: str, metrics: Mapping[str, str], smooth: bool = True) -> None:
        present = [key for key in metrics if key in keys]
        if present:
            groups[group].panels.append((title, present, window) if smooth and window > 1 else (title, present))
            groups[group].labels.update({key: metrics[key] for key in present})

    def by_type(pattern: str) -> dict[str, str]:
        return {pattern.format(t): t for t in TYPES}

    add("rewards", "proposer reward", by_type("propose/{}/reward"))
    add("rewards", "proposer learnability", by_type("propose/{}/learnability"))
    add("rewards", "solver reward", by_type("solve/{}/reward"))
    add("rewards", "solver accuracy", by_type("solve/{}/accuracy"))
    add("proposals", "valid proposals (share)", by_type("propose/{}/valid_rate"))
    for t in TYPES:
        prefix = f"propose/{t}/rejected/"
        add(
            "proposals",
            f"rejected {t} proposals (share)",
            {k: k[len(prefix) :] for k in sorted(keys) if k.startswith(prefix)},
        )
    add("proposals", "samples that hit internal errors (bugs in azr)", {"errors/internal": "all"}, smooth=False)
    add("store", "live tasks in the store", by_type("store/{}/size"), smooth=False)
    add("store", "tasks added per step", {"store/added": "added"})
    add("store", "distinct valid programs per step", by_type("propose/{}/distinct_programs"))
    add("store", "valid program length (chars)", by_type("propose/{}/program_chars"))
    evals: dict[tuple[str, str], dict[str, str]] = {}
    for key in sorted(keys):
        if match := _EVAL.match(key):
            evals.setdefault((match["bench"] or "held-out", match["k"]), {})[key] = match["name"]
    for (bench, k), metrics in sorted(evals.items(), key=lambda item: (item[0][0], int(item[0][1]))):
        ordered = sorted(metrics, key=lambda key: (_rank(metrics[key]), key))
        add("validation", f"{bench} pass@{k}", {key: metrics[key] for key in ordered}, smooth=False)
    phases = sorted(
        (k for k in keys if k.startswith("time/") and k != "time/eval"), key=lambda k: (k != "time/step", k)
    )
    add("timings", "seconds per step, by phase", {k: k.removeprefix("time/") for k in phases})
    add("timings", "seconds per evaluation", {"time/eval": "eval"}, smooth=False)
    add("timings", "generated tokens per second", {"tokens/per_second": "tokens/s"})
    for key in sorted(k for k in keys if k.startswith("update/")):
        add("update", key.removeprefix("update/").replace("_", " "), {key: key.removeprefix("update/")})
    return list(groups.values())


def plot_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The metrics rows with the share of each rejection reason set to 0 at the steps that proposed
    tasks of its type but logged no such rejection (the trainer logs only the reasons that occurred),
    so that its trailing mean is not taken over the steps where it happened alone."""
    reasons = {key for row in rows for key in row if "/rejected/" in key}
    filled = []
    for row in rows:
        zeros = {
            k: 0.0 for k in reasons if k not in row and row.get(k.split("/rejected/")[0] + "/valid_rate") is not None
        }
        filled.append({**row, **zeros})
    return filled


def store_stats(path: Path) -> list[dict[str, Any]]:
    """Per task type in a task store (tasks.db, opened read-only so a running trainer is not disturbed):
    live tasks, how many of them the proposer wrote, their distinct programs and mean program length,
    and tasks evicted by the cap. Raises sqlite3.Error when the file is not a readable task store."""
    try:
        with TaskStore(path, readonly=True) as store:
            found = store.stats()
    except StoreError as error:
        raise sqlite3.DatabaseError(str(error)) from None
    names = ("live", "proposed", "distinct programs", "mean program chars", "evicted")
    ordered = [t for t in TYPES if t in found] + sorted(t for t in found if t not in TYPES)
    return [{"task type": t, **dict(zip(names, found[t], strict=True))} for t in ordered]


def pick_samples(path: Path, per_group: int, max_steps: int) -> tuple[list[tuple[int, list[dict[str, Any]]]], int]:
    """Rows of samples.jsonl to show: at most `per_group` per (step, role, task type), from at most
    `max_steps` evenly spaced steps (the first and last included), so that a long run's page stays
    small. Returns them grouped by step, and the number of steps the file has."""
    steps = sorted({row["step"] for row in iter_jsonl(path) if isinstance(row.get("step"), int)})
    chosen = set(spread(steps, max_steps))
    kept: dict[int, list[dict[str, Any]]] = {step: [] for step in sorted(chosen)}
    counts: Counter[tuple[Any, ...]] = Counter()
    for row in iter_jsonl(path):
        group = (row.get("step"), str(row.get("role")), str(row.get("task_type")))
        if group[0] in chosen and counts[group] < per_group:
            counts[group] += 1
            kept[group[0]].append(row)
    roles = {"propose": 0, "solve": 1}
    for rows in kept.values():
        rows.sort(key=lambda r: (roles.get(str(r.get("role")), 2), _rank(r.get("task_type"))))
    return [(step, rows) for step, rows in kept.items() if rows], len(steps)


def spread(items: Sequence[int], count: int) -> list[int]:
    """At most `count` of `items`, evenly spaced, the first and last included."""
    if len(items) <= count:
        return list(items)
    if count == 1:
        return [items[-1]]
    return sorted({items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)})


def write_report(run_dir: Path, out: Path, samples: int = 2, sample_steps: int = 20) -> Path:
    """Write `out`/index.html, a static page about a run directory made by `azr train` (summary, plots
    as PNG files beside it, task store, sample proposals and answers, config), and return its path."""
    from azr.report.html import Page, render
    from azr.report.plots import curves

    rows = read_metrics(run_dir / "metrics.jsonl")
    out.mkdir(parents=True, exist_ok=True)
    plots: list[tuple[str, str | None]] = []
    filled = plot_rows(rows)
    for group in plot_groups(rows):
        png = out / f"{group.name}.png"
        if group.panels:
            curves({run_dir.name: filled}, group.panels, png, group.title, lambda _, key, g=group: g.labels[key])
            plots.append((group.title, png.name))
        else:
            png.unlink(missing_ok=True)
            plots.append((group.title, None))
    store: list[dict[str, Any]] | str | None = None
    if (run_dir / "tasks.db").is_file():
        try:
            store = store_stats(run_dir / "tasks.db")
        except sqlite3.Error as error:
            store = f"tasks.db could not be read: {error}"
    shown, total_steps = ([], 0)
    if samples > 0 and (run_dir / "samples.jsonl").is_file():
        shown, total_steps = pick_samples(run_dir / "samples.jsonl", samples, sample_steps)
    config = run_dir / "config.yaml"
    page = Page(
        run_name=run_dir.resolve().name,
        run_path=str(run_dir.resolve()),
        steps=[r["step"] for r in rows],
        seconds=_duration(rows),
        summary=summary(rows),
        config=config.read_text(encoding="utf-8", errors="replace") if config.is_file() else None,
        plots=plots,
        store=store,
        samples=shown,
        sample_steps=total_steps,
        per_group=samples,
    )
    index = out / "index.html"
    index.write_text(render(page), encoding="utf-8")
    return index


def _duration(rows: Sequence[Mapping[str, Any]]) -> float | None:
    times = [r["time"] for r in rows if r.get("time") is not None]
    return max(times) - min(times) if len(times) > 1 else None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _rank(task_type: Any) -> int:
    return TYPES.index(task_type) if task_type in TYPES else len(TYPES)
