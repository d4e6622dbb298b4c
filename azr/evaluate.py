"""Evaluating a model as a solver on a fixed set of tasks: pass@1 per task type.

The tasks come from a file in the seed format (`snippet`, `input`, `output`; induction rows with
`inputs`, `outputs`, `message`), validated like any seed file, so their outputs are recomputed in
the sandbox and their spelling is canonical. Each triplet is asked both ways (deduction and
abduction) when both are requested. The model answers through the same template, generator and
verifier as in training, so a number here means what it means there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azr.generation import Generator, Sampling
from azr.prompts import Template
from azr.seeds import read_rows
from azr.solve import solve
from azr.tasks import FormatError, Task, TaskType, TripletTask
from azr.validate import ValidationConfig, Validator
from azr.verify import Verifier


@dataclass
class Benchmark:
    tasks: list[Task]
    skipped: int = 0
    """Rows that did not validate (not literal, raising, nondeterministic...)."""
    reasons: dict[str, int] = field(default_factory=dict)


def load_benchmark(
    path: Path, task_types: Sequence[TaskType], executor: Any, limit: int | None = None, seed: int = 0
) -> Benchmark:
    """The tasks of a seed-format file, validated; triplet rows serve deduction and abduction.
    Induction rows must all have as many inputs as the first one."""
    lines = path.read_text(encoding="utf-8").splitlines()
    triplet_lines = [line for line in lines if line.strip() and '"inputs"' not in line]
    induction_lines = [line for line in lines if '"inputs"' in line]
    if limit is not None:
        triplet_lines, induction_lines = triplet_lines[:limit], induction_lines[:limit]
    try:
        inputs = len(json.loads(induction_lines[0])["inputs"]) if induction_lines else 4
    except (ValueError, KeyError, TypeError):
        inputs = 4
    validator = Validator(executor, ValidationConfig(induction_inputs=max(inputs, 2)), seed=seed)
    benchmark = Benchmark([])
    counted: set[str] = set()  # a triplet row serves two task types: count its rejection once
    for task_type in task_types:
        source = induction_lines if task_type is TaskType.INDUCTION else triplet_lines
        kind = "induction" if task_type is TaskType.INDUCTION else "triplet"
        count_rejections = kind not in counted
        counted.add(kind)
        proposals = list(read_rows(source, task_type))
        for validation in validator.validate(proposals, step=0, source=f"bench:{path.name}"):
            if validation.task is not None:
                benchmark.tasks.append(validation.task)
            elif count_rejections:
                benchmark.skipped += 1
                reason = validation.rejection.value  # type: ignore[union-attr]
                benchmark.reasons[reason] = benchmark.reasons.get(reason, 0) + 1
    return benchmark


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k from n samples of which c are correct (Chen et al. 2021,
    arXiv 2107.03374, Eq. 1): 1 - C(n-c, k) / C(n, k), as a product that never overflows."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def evaluate(
    generator: Generator,
    template: Template,
    verifier: Verifier,
    tasks: Sequence[Task],
    samples: int,
    sampling: Sampling,
    seed: int,
    ks: Sequence[int] = (1,),
) -> dict[str, Any]:
    """pass@k per task type for each k in `ks` (the mean over tasks of the unbiased estimate from
    `samples` answers each; pass@1 is the mean accuracy) and per-task verdicts."""
    if max(ks) > samples:
        raise ValueError(f"pass@{max(ks)} needs at least {max(ks)} samples per task, not {samples}")
    rollouts = solve(generator, template, verifier, list(tasks), samples, sampling, seed)
    per_type: dict[str, list[list[float]]] = {}
    verdicts = []
    for task, answers in zip(tasks, rollouts, strict=True):
        correct = [a.verdict.correct for a in answers]
        estimates = [pass_at_k(len(correct), sum(correct), k) for k in ks]
        per_type.setdefault(task.task_type.value, []).append(estimates)
        verdicts.append(
            {
                "task_type": task.task_type.value,
                "program": task.program,
                "input": task.input if isinstance(task, TripletTask) else list(task.inputs),
                "output": task.output if isinstance(task, TripletTask) else list(task.outputs),
                "correct": correct,
                "reasons": [a.verdict.reason for a in answers],
                "answers": [None if isinstance(a.answer, FormatError) else a.answer.text for a in answers],
            }
        )
    summary = {
        name: {**{f"pass@{k}": sum(row[i] for row in rows) / len(rows) for i, k in enumerate(ks)}, "n": len(rows)}
        for name, rows in sorted(per_type.items())
    }
    return {"results": summary, "tasks": verdicts}


def write_result(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
