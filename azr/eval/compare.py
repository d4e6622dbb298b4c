"""Two evaluations of the same tasks, compared task by task (`azr compare BASE.json AFTER.json`).

Scores on a few hundred tasks move by chance by a few points, so a difference is reported with its
noise, from the tasks both files scored (paired by task id):

- the paired difference of pass@1 (each task's fraction of right samples; with one sample, 0 or 1)
  and its 95% interval by the bootstrap: the tasks resampled with replacement, `resamples` times,
  the 2.5th and 97.5th percentiles of the mean difference (Efron and Tibshirani 1993, ch. 13);
- McNemar's exact test on the tasks that flipped (McNemar 1947): a task counts as solved when more
  than half its samples are right; under no change, a flip is as likely either way, so the number
  that flipped up among all flips is Binomial(flips, 1/2); p is two-sided;
- the tasks that flipped each way, by id, to read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


class CompareError(ValueError):
    """The files cannot be compared; the message says why."""


@dataclass(frozen=True)
class Comparison:
    """One group (a task type, or a benchmark's own name) of one benchmark, in both files."""

    benchmark: str
    group: str
    tasks: int
    """Tasks scored in both files: what the numbers below are over."""
    base: float
    after: float
    difference: float
    low: float
    high: float
    """The bootstrap 95% interval of `difference`."""
    p_mcnemar: float
    solved_now: list[str] = field(default_factory=list)
    """Tasks unsolved in the base, solved after."""
    lost: list[str] = field(default_factory=list)
    """Tasks solved in the base, unsolved after."""
    only_one_file: int = 0
    """Tasks of this group scored in one file only (left out)."""

    def row(self) -> dict[str, Any]:
        return asdict(self)


def mcnemar(up: int, down: int) -> float:
    """Two-sided exact McNemar p-value for `up` tasks that flipped to solved and `down` to unsolved:
    2 x P(X <= min(up, down)) for X ~ Binomial(up + down, 1/2), at most 1; 1 when nothing flipped."""
    flips = up + down
    if flips == 0:
        return 1.0
    tail = sum(math.comb(flips, i) for i in range(min(up, down) + 1)) / 2**flips
    return min(1.0, 2 * tail)


def bootstrap_interval(differences: Sequence[float], resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile interval of the mean of `differences`, over `resamples` resamples of the
    tasks with replacement, drawn from `seed` (the same files give the same interval)."""
    import torch

    if not differences:
        return 0.0, 0.0
    values = torch.tensor(list(differences), dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(values), (resamples, len(values)), generator=generator)
    means = values[picks].mean(dim=1)
    low, high = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return float(low), float(high)


def compare(
    base: dict[str, Any],
    after: dict[str, Any],
    resamples: int = 10_000,
    seed: int = 0,
    names: tuple[str, str] = ("BASE", "AFTER"),
) -> list[Comparison]:
    """Every (benchmark, group) that both `azr eval --out` results hold, compared on the tasks both
    scored. A benchmark in one file only is left out (the caller says so). `names`: the files, for
    errors."""
    found = []
    for name in sorted(set(_benchmarks(base)) & set(_benchmarks(after))):
        before, now = _scores(_benchmarks(base)[name], names[0]), _scores(_benchmarks(after)[name], names[1])
        for group in sorted(set(before) | set(now)):
            a, b = before.get(group, {}), now.get(group, {})
            shared = sorted(set(a) & set(b))
            if not shared:
                continue
            differences = [b[task] - a[task] for task in shared]
            low, high = bootstrap_interval(differences, resamples, seed)
            solved_now = [task for task in shared if a[task] <= 0.5 < b[task]]
            lost = [task for task in shared if b[task] <= 0.5 < a[task]]
            found.append(Comparison(
                name, group, len(shared), _mean([a[t] for t in shared]), _mean([b[t] for t in shared]),
                _mean(differences), low, high, mcnemar(len(solved_now), len(lost)), solved_now, lost,
                len(set(a) ^ set(b)),
            ))  # fmt: skip
    return found


def only_in_one(base: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The benchmarks one file holds and the other does not."""
    return sorted(set(_benchmarks(base)) ^ set(_benchmarks(after)))


def table(comparisons: Sequence[Comparison]) -> str:
    """The comparisons as a text table, one line each."""
    head = f"{'benchmark':<14} {'group':<12} {'tasks':>5} {'base':>6} {'after':>6} {'diff':>6}  {'95% interval':<16} "
    lines = [head + f"{'McNemar p':>9}  {'flips':>9}"]
    for c in comparisons:
        interval = f"[{c.low * 100:+.1f}, {c.high * 100:+.1f}]"
        lines.append(
            f"{c.benchmark:<14} {c.group:<12} {c.tasks:>5} {c.base * 100:>6.1f} {c.after * 100:>6.1f} "
            f"{c.difference * 100:>+6.1f}  {interval:<16} {c.p_mcnemar:>9.3g}  "
            f"{f'+{len(c.solved_now)} -{len(c.lost)}':>9}"
        )
    return "\n".join(lines)


def _benchmarks(result: dict[str, Any]) -> dict[str, Any]:
    benchmarks = result.get("benchmarks") if isinstance(result, dict) else None
    if not isinstance(benchmarks, dict):
        raise CompareError("holds no benchmarks: give a file written by `azr eval --out`")
    return benchmarks


def _scores(benchmark: Any, which: str) -> dict[str, dict[str, float]]:
    """pass@1 of every task, by group then task id."""
    if not isinstance(benchmark, dict) or not isinstance(benchmark.get("tasks"), list):
        raise CompareError(f"{which}: a benchmark without its per-task results; give a file of `azr eval --out`")
    scores: dict[str, dict[str, float]] = {}
    for task in benchmark["tasks"]:
        try:
            correct = [bool(c) for c in task["correct"]]
            group, task_id = str(task["group"]), str(task["task_id"])
        except (KeyError, TypeError):
            raise CompareError(f"{which}: a task without task_id, group or correct; not an `azr eval` result") from None
        if not correct:
            raise CompareError(f"{which}: task {task_id} has no verdict")
        if task_id in scores.setdefault(group, {}):
            raise CompareError(f"{which}: task {task_id} appears twice in {group}")
        scores[group][task_id] = sum(correct) / len(correct)
    return scores


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
