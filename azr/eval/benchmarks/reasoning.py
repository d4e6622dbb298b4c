"""Reasoning benchmarks: deduction, abduction and induction tasks, asked as in training.

Seed-format files (the held-out split among them) are validated like any seed file, so their
outputs are recomputed in the sandbox and their spelling is canonical. CRUXEval's functions are
human-written and trusted to be deterministic, so they skip the proposer's filter: each gold input
is run once in the sandbox, which gives the canonical output the answers are checked against (the
12 gold inputs that are not literals, such as `dict(a=1)`, are skipped and counted).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from azr.eval.benchmarks import Benchmark, BenchmarkError, ReasoningProblem
from azr.executor import ExecRequest, NotPlainData, parse_arguments
from azr.tasks import TaskType, TripletTask
from azr.tasks.seeds import read_rows
from azr.tasks.validate import ValidationConfig, Validator
from azr.userfiles import UserFileError, read_text, split_lines

CRUXEVAL_TYPES = {
    "cruxeval-o": (TaskType.DEDUCTION,),
    "cruxeval-i": (TaskType.ABDUCTION,),
    "cruxeval": (TaskType.DEDUCTION, TaskType.ABDUCTION),
}


def seed_file(
    name: str, path: Path, task_types: Sequence[str], executor: Any, limit: int | None = None, seed: int = 0
) -> Benchmark:
    """The tasks of a seed-format file, validated; a triplet row serves deduction and abduction.
    Induction rows must all have as many inputs as the first one. Task ids are `file:line`."""
    try:
        text = read_text(path, "benchmark file")
    except UserFileError as error:
        raise BenchmarkError(str(error)) from None
    lines = split_lines(text)
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    triplet_lines = [(n, line) for n, line in numbered if '"inputs"' not in line][:limit]
    induction_lines = [(n, line) for n, line in numbered if '"inputs"' in line][:limit]
    try:
        inputs = len(json.loads(induction_lines[0][1])["inputs"]) if induction_lines else 4
    except (ValueError, KeyError, TypeError, RecursionError):
        inputs = 4
    validator = Validator(executor, ValidationConfig(induction_inputs=max(inputs, 2)), seed=seed)
    benchmark = Benchmark(name, "reasoning", str(path), [])
    counted: set[str] = set()  # a triplet row serves two task types: count its rejection once
    for task_type in task_types:
        source = induction_lines if task_type == TaskType.INDUCTION else triplet_lines
        kind = "induction" if task_type == TaskType.INDUCTION else "triplet"
        count_rejections = kind not in counted
        counted.add(kind)
        proposals = list(read_rows([line for _, line in source], task_type))
        validations = validator.validate(proposals, step=0, source=f"bench:{path.name}")
        for (number, _), validation in zip(source, validations, strict=True):
            if validation.task is not None:
                benchmark.problems.append(ReasoningProblem(f"{path.name}:{number}", validation.task))
            elif count_rejections:
                benchmark.skip(validation.rejection.value)  # type: ignore[union-attr]
    return benchmark


def cruxeval(name: str, rows: list[dict[str, Any]], source: str, executor: Any, limit: int | None = None) -> Benchmark:
    """CRUXEval rows (`id`, `code`, `input`, `output`) as deduction and/or abduction tasks."""
    benchmark = Benchmark(name, "reasoning", source, [])
    kept: list[tuple[str, str, str]] = []
    for row in rows[:limit]:
        try:
            if not isinstance(row["code"], str):
                raise TypeError("code is not text")
            kept.append((str(row["id"]), row["code"], parse_arguments(row["input"]).canonical()))
        except (KeyError, TypeError):
            benchmark.skip("malformed row (needs id, code, input, output)")
        except NotPlainData:
            benchmark.skip("gold input is not a literal")
    results = executor.run_batch([ExecRequest(code, arguments) for _, code, arguments in kept])
    tasks = []
    for (task_id, code, arguments), result in zip(kept, results, strict=True):
        if not result.ok:
            benchmark.skip(f"gold input does not run ({result.status.value})")
            continue
        tasks.append((task_id, code, arguments, result.output))
    for task_type in CRUXEVAL_TYPES[name]:
        benchmark.problems += [
            ReasoningProblem(task_id, TripletTask(task_type, code, arguments, output))
            for task_id, code, arguments, output in tasks
        ]
    return benchmark
