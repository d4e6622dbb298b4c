"""The pretraining data of the embedded model: generated programs made into validated tasks, and the
tasks written as transcripts of all six (role, task type) pairs in the `compact` template.

Tasks pass through the same Validator as self-play proposals (sandboxed runs, two hash seeds), so
the base model learns from exactly the kind of task it will later propose and solve. The held-out
set comes from another seed and shares no normalised program with the training tasks.

Solvers think before they answer: their transcripts carry a scratchpad (azr.base.scratchpad).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from azr.base.programs import Program, draw_input, generate
from azr.executor import Executor
from azr.prompts.compact import CompactTemplate
from azr.tasks import InductionProposal, InductionTask, TaskType, TripletProposal, TripletTask
from azr.tasks.programs import normalized
from azr.tasks.validate import ValidationConfig, Validator

MAX_OUTPUT_CHARS = 60
"""Longer outputs are dropped: a tiny model should not spend its capacity on copying."""


@dataclass(frozen=True)
class TaskSet:
    triplets: list[TripletTask]
    inductions: list[InductionTask]


def make_tasks(
    executor: Executor,
    seed: int,
    programs: int,
    induction_share: float = 0.25,
    induction_inputs: int = 4,
    exclude: set[str] | None = None,
    batch: int = 2000,
) -> TaskSet:
    """Tasks from `programs` random programs: each gives 1-3 deduction/abduction triplets or, with
    probability `induction_share`, one induction task. Programs whose normalised form is in
    `exclude` are skipped."""
    rng = random.Random(seed)
    validator = Validator(executor, ValidationConfig(induction_inputs=induction_inputs), seed=seed)
    triplets: list[TripletTask] = []
    inductions: list[InductionTask] = []
    seen = set(exclude or ())
    remaining = programs
    while remaining > 0:
        proposals: list[TripletProposal | InductionProposal] = []
        for program in _programs(rng, min(batch, remaining), seen):
            if rng.random() < induction_share:
                inputs = _distinct_inputs(program, induction_inputs + 2, rng)
                proposals.append(InductionProposal(program.source, tuple(inputs), program.message))
            else:
                for text in _distinct_inputs(program, rng.randint(1, 3), rng):
                    task_type = TaskType.DEDUCTION if rng.random() < 0.5 else TaskType.ABDUCTION
                    proposals.append(TripletProposal(task_type, program.source, text))
        remaining -= batch
        for validation in validator.validate(proposals, step=0, source="synthetic"):
            task = validation.task
            if task is None:
                continue
            outputs = task.outputs if isinstance(task, InductionTask) else (task.output,)
            if max(len(o) for o in outputs) > MAX_OUTPUT_CHARS:
                continue
            (inductions if isinstance(task, InductionTask) else triplets).append(task)  # type: ignore[arg-type]
    return TaskSet(triplets, inductions)


def _programs(rng: random.Random, count: int, seen: set[str]) -> Iterator[Program]:
    made = 0
    while made < count:
        program = generate(rng)
        key = normalized(program.source)
        if key in seen:
            continue
        seen.add(key)
        made += 1
        yield program


def _distinct_inputs(program: Program, count: int, rng: random.Random) -> list[str]:
    inputs: list[str] = []
    for _ in range(count * 4):
        text = ", ".join(draw_input(kind, rng, program.style) for kind in program.params)
        if text not in inputs:
            inputs.append(text)
        if len(inputs) == count:
            break
    return inputs


def transcripts(tasks: TaskSet, rng: random.Random, references: int = 2, pads: list[str] | None = None) -> list[str]:
    """Every task written out as the transcripts the compact template makes: prompt + completion.

    Each triplet gives a solver transcript of its own type, thinking in its scratchpad (`pads`,
    aligned with the triplets; empty without), and, half the time, a proposer transcript (with
    `references` random other triplets as references); each induction task a solver and a proposer
    transcript.
    """
    template = CompactTemplate(n_inputs=0, think=True)
    pads = pads if pads is not None else [""] * len(tasks.triplets)
    texts = []
    for task, pad in zip(tasks.triplets, pads, strict=True):
        answer = "<O>" + task.output if task.task_type == TaskType.DEDUCTION else "<I>" + task.input
        texts.append(template.solve_prompt(task) + pad + answer + "<E>")
        if rng.random() < 0.5:
            shown = rng.sample(tasks.triplets, min(references, len(tasks.triplets)))
            texts.append(template.propose_prompt(task.task_type, shown) + f"{task.program}<I>{task.input}<E>")
    for task in tasks.inductions:
        texts.append(template.solve_prompt(task) + "<P>" + task.program + "<E>")
        inputs = "".join(f"<I>{i}" for i in task.inputs)
        texts.append(template.propose_prompt(TaskType.INDUCTION, [task]) + f"{task.message}{inputs}<E>")
    rng.shuffle(texts)
    return texts
