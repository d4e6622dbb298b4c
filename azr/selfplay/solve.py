"""Stages 3 and 4: solve tasks and judge the answers (AZR paper sections 3.3.3-3.3.4).

The same function serves both: n = N_mc rollouts per new proposal, to estimate how often it is
solved (its learnability), and n = 1 per task of the solver's batch, to train the solver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from azr.engine.generation import Completion, Generator, Sampling
from azr.prompts import Template
from azr.tasks import Answer, FormatError, InternalError, Stage, Task, Verdict
from azr.tasks.guard import guarded
from azr.tasks.verify import Verifier


@dataclass(frozen=True)
class Solved:
    """One solver rollout and its verdict."""

    task: Task
    prompt: str
    completion: Completion
    answer: Answer | FormatError | InternalError
    """InternalError: the template's parser raised on it (a bug of ours; azr.tasks.guard)."""
    verdict: Verdict


def solve(
    generator: Generator,
    template: Template,
    verifier: Verifier,
    tasks: Sequence[Task],
    n: int,
    sampling: Sampling,
    seed: int,
    chat: Any = None,
) -> list[list[Solved]]:
    """`n` sampled answers to each task, parsed and verified (all runs in one executor batch)."""
    if not tasks:
        return []
    prompts = [template.render(template.solve_prompt(task), chat) for task in tasks]
    completions = generator.generate(prompts, n, sampling, seed)
    answers = [
        [guarded(Stage.PARSE_ANSWER, template.parse_answer, task.task_type, done.text) for done in rollouts]
        for task, rollouts in zip(tasks, completions, strict=True)
    ]
    flat = [(task, answer) for task, rollouts in zip(tasks, answers, strict=True) for answer in rollouts]
    verdicts = iter(verifier.verify(flat))
    return [
        [Solved(task, prompt, done, answer, next(verdicts)) for done, answer in zip(rollouts, parsed, strict=True)]
        for task, prompt, rollouts, parsed in zip(tasks, prompts, completions, answers, strict=True)
    ]
