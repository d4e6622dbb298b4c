"""The pretraining data of the embedded model: generated programs made into validated tasks, and the
tasks written as transcripts of all six (role, task type) pairs in the `compact` template.

Tasks pass through the same Validator as self-play proposals (sandboxed runs, two hash seeds), so
the base model learns from exactly the kind of task it will later propose and solve. The held-out
set comes from another seed and shares no normalised program with the training tasks.

Solvers think before they answer (the compact template's scratchpad after `<T>`), and the
transcripts put there what a person would write, recorded by the sandbox's trace mode
(azr.executor.trace): for deduction the values the variables take as the program runs
(`x=4`, `y=7`, `return 14`); for abduction a candidate input and its run the same way, half the
time after a wrong candidate whose run ends elsewhere (so a guess is checked, and a failed check
followed by another guess). Induction's scratchpad stays empty. A trace longer than
SCRATCHPAD_CHARS is cut with `...`: past it the model answers without the rest written out.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from azr.base.ordinary import WORDS
from azr.base.programs import INT, LIST, STR, Program, draw_input, generate
from azr.executor import ExecRequest, ExecResult, Executor, NotPlainData, parse_arguments
from azr.executor.trace import CUT
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


SCRATCHPAD_CHARS = 120
"""Longest scratchpad written (an abduction attempt: half of it); a longer trace is cut with `...`."""
TRACE_EVENTS = 32
WRONG_FIRST = 0.5
"""How often an abduction scratchpad starts with a wrong candidate."""


def scratchpads(executor: Executor, triplets: list[TripletTask], rng: random.Random) -> list[str]:
    """What each triplet's solver writes before answering: traces of runs (see the module's docstring)."""
    requests = [ExecRequest(t.program, t.input, trace=TRACE_EVENTS) for t in triplets]
    wrong: dict[int, int] = {}
    for index, task in enumerate(triplets):
        if task.task_type == TaskType.ABDUCTION and rng.random() < WRONG_FIRST:
            candidate = _another_input(task.input, rng)
            if candidate is not None and candidate != task.input:
                wrong[index] = len(requests)
                requests.append(ExecRequest(task.program, candidate, trace=TRACE_EVENTS))
    results = executor.run_batch(requests)
    pads = []
    for index, task in enumerate(triplets):
        if task.task_type == TaskType.DEDUCTION:
            pads.append(written(results[index], SCRATCHPAD_CHARS))
            continue
        attempts = [written(results[index], SCRATCHPAD_CHARS // 2)]
        other = results[wrong[index]] if index in wrong else None
        if other is not None and other.ok and other.output != task.output and other.trace:
            attempts.insert(0, written(other, SCRATCHPAD_CHARS // 2))
        pads.append("\n".join(attempts))
    return pads


def written(result: ExecResult, limit: int) -> str:
    """A traced run as a person writes it down: `name=value` lines, `return value`, cut at `limit`."""
    lines = []
    for event in result.trace:
        line = (
            CUT
            if event.name == CUT
            else f"return {event.value}"
            if event.name == "return"
            else f"{event.name}={event.value}"
        )
        if sum(len(x) + 1 for x in lines) + len(line) > limit:
            lines.append(CUT)
            break
        lines.append(line)
    return "\n".join(lines)


def _another_input(text: str, rng: random.Random) -> str | None:
    """An input of the same types as `text`, drawn afresh (a wrong first guess, usually)."""
    try:
        arguments = parse_arguments(text)
    except NotPlainData:
        return None
    kinds = [_kind(value) for value in arguments.args]
    if arguments.kwargs or None in kinds:
        return None
    return ", ".join(draw_input(kind, rng) for kind in kinds)  # type: ignore[arg-type]


def _kind(value: object) -> str | None:
    if type(value) is list:
        return WORDS if value and all(type(e) is str for e in value) else LIST
    return {int: INT, str: STR}.get(type(value))


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
