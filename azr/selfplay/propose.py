"""Stage 1: propose tasks (AZR paper section 3.3.2; AZR.md section 2).

Each family draws what its proposer is shown from the buffers (azr.tasks.family): for deduction
and abduction, K reference triplets drawn without replacement from that type's buffer, to differ
from; for induction, one program from the deduction and abduction buffers, to write N inputs and a
message for. Completions are parsed by the template; a malformed one becomes a FormatError, to be
penalised, never an exception (and a parser that raises anyway, an InternalError: azr.tasks.guard).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from azr.engine.generation import Completion, Generator, Sampling
from azr.prompts import Template
from azr.tasks import FormatError, InternalError, Proposal, Stage, Task, _name
from azr.tasks.guard import guarded
from azr.tasks.registry import family
from azr.tasks.store import TaskStore


@dataclass(frozen=True)
class Proposed:
    """One proposer rollout: its prompt, its completion, and what the template read in it."""

    task_type: str
    prompt: str
    completion: Completion
    proposal: Proposal | FormatError | InternalError


@dataclass(frozen=True)
class Job:
    """One proposer prompt, planned: its task type, its text, and the references it shows."""

    task_type: str
    prompt: str
    shown: list[Task]


def propose(
    generator: Generator,
    template: Template,
    store: TaskStore,
    task_types: Sequence[str],
    batch_size: int,
    references: int,
    sampling: Sampling,
    rng: random.Random,
    seed: int,
    chat: Any = None,
) -> list[Proposed]:
    """`batch_size` proposals of each type (fewer of a type whose family has nothing to show yet:
    induction until a triplet buffer has a program)."""
    jobs = plan(template, store, task_types, batch_size, references, rng, chat)
    return write(generator, template, jobs, sampling, seed)


def plan(
    template: Template,
    store: TaskStore,
    task_types: Sequence[str],
    batch_size: int,
    references: int,
    rng: random.Random,
    chat: Any = None,
) -> list[Job]:
    """The proposer prompts, with the references each family draws from the buffers (with `rng`;
    with several ranks, rank 0 plans and the others are sent the plan)."""
    jobs = []
    for task_type in task_types:
        for _ in range(batch_size):
            shown = family(task_type).references(store, references, rng)
            if shown is not None:
                jobs.append(
                    Job(_name(task_type), template.render(template.propose_prompt(task_type, shown), chat), shown)
                )
    return jobs


def write(
    generator: Generator, template: Template, jobs: Sequence[Job], sampling: Sampling, seed: int
) -> list[Proposed]:
    """Each job's completion, and the proposal the template reads in it."""
    completions = generator.generate([job.prompt for job in jobs], 1, sampling, seed)
    proposed = []
    for job, [done] in zip(jobs, completions, strict=True):
        proposal = guarded(Stage.PARSE_PROPOSAL, template.parse_proposal, job.task_type, done.text, job.shown)
        proposed.append(Proposed(job.task_type, job.prompt, done, proposal))
    return proposed
